"""A pure-Python model of the cache's policy, for tests only: what EmbeddingCache must do, written plainly.

Per batch: the unique real ids (0 is padding) in ascending order; those cached are hits (their ways are
protected for this batch); a set's misses, in ascending id order, take the set's unprotected ways in ascending
victim key — LRU (stamp, way), LFU (min(freq, FREQ_MAX), min(stamp, STAMP_MAX), way) — and misses left without
a way are served from host without being cached. Hits add their occurrences to freq and take the batch's
stamp; inserted rows start with their occurrences and the stamp. Stamps count batches from 1; 0 means never
used.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from genrec_bench.models.embedding.cache import cache_geometry
from genrec_bench.models.embedding.policies import FREQ_MAX, stamp_max


@dataclass
class Slot:
    item: int = -1
    stamp: int = 0
    freq: int = 0


@dataclass
class ReferenceCache:
    num_items: int
    rows: int
    policy: str = "lfu"
    ways: int = 32
    clock: int = 0
    counters: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self.sets, self.ways = cache_geometry(self.rows, self.num_items, self.ways)
        self.table = [[Slot() for _ in range(self.ways)] for _ in range(self.sets)]
        self.where: dict[int, tuple[int, int]] = {}  # item → (set, way)

    def key(self, way: int, slot: Slot) -> tuple:
        if self.policy == "lru":
            return slot.stamp, way
        return min(slot.freq, FREQ_MAX), min(slot.stamp, stamp_max(self.ways)), way

    def step(self, ids: list[int]) -> None:
        """One batch of lookups."""
        self.clock += 1
        seen = Counter(i for i in ids if i != 0)
        hits = sorted(i for i in seen if i in self.where)
        misses = sorted(i for i in seen if i not in self.where)
        protected = {self.where[i] for i in hits}
        for item in hits:
            s, w = self.where[item]
            slot = self.table[s][w]
            slot.freq, slot.stamp = min(slot.freq + seen[item], FREQ_MAX), self.clock
        for s in range(self.sets):
            mine = [i for i in misses if i % self.sets == s]
            free = sorted(
                (w for w in range(self.ways) if (s, w) not in protected),
                key=lambda w, s=s: self.key(w, self.table[s][w]),
            )
            for item, w in zip(mine, free):
                slot = self.table[s][w]
                if slot.item >= 0:
                    del self.where[slot.item]
                    self.counters["evicted"] += 1
                self.table[s][w] = Slot(item=item, stamp=self.clock, freq=min(seen[item], FREQ_MAX))
                self.where[item] = (s, w)
                self.counters["inserted"] += 1
            self.counters["overflow"] += max(0, len(mine) - len(free))
        self.counters.update(
            calls=1,
            lookups=sum(seen.values()),
            hit_lookups=sum(seen[i] for i in hits),
            unique_ids=len(seen),
            unique_hits=len(hits),
            misses=len(misses),
        )

    def cached(self) -> dict[int, int]:
        """item → slot index (set · ways + way), the layout EmbeddingCache uses."""
        return {item: s * self.ways + w for item, (s, w) in self.where.items()}
