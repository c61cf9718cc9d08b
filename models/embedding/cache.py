"""The per-batch embedding cache: rows of a host-memory item table kept in a set-associative device cache.

One `lookup(ids)` per model call, all with static shapes and no host synchronisation (nothing is read back to
the host, no data-dependent sizes), so the step can be captured in a CUDA graph:
1. deduplicate: sort the ids; the first of each run of equal ids leads its group (padding id 0 is never
   looked up: its row is zero by construction);
2. hits: a direct-mapped index on the device (`slot_of`, int32 per item id, −1 when not cached);
3. victims: an id belongs to set `id % sets`; a set's misses, in ascending id order, take its unprotected ways
   in ascending victim key (models/embedding/policies.py); ways hit by this batch are protected; misses beyond
   a set's free ways are served without being cached ("overflow");
4. fetch: the misses' rows are read from host memory straight into their new slots (or, for overflow, into a
   per-call spill row) by the masked row fetch (kernels/row_fetch: zero-copy on a GPU), nothing else crosses;
5. the index, the policy state and the counters are updated on the device.
It returns, per id, the row of `storage` that holds it, so the model gathers its rows from `storage` itself.

Why set-associative (32 ways by default, as FBGEMM's TBE cache): choosing victims costs O(ids × ways) per
batch whatever the cache size, where an exact global LRU/LFU would sort the keys of every cached row each
batch. With ways ≥ the cache's rows it is one fully associative set.

Writes that a position does not make go to its own spare entry (index capacity + position), never to one
shared dump entry: thousands of writes to one address serialise on the GPU.
"""

from __future__ import annotations

import math

import torch

from genrec_bench.kernels.row_fetch import fetch_rows
from genrec_bench.models.embedding.policies import FREQ_MAX, POLICIES, PROTECTED, victim_keys

COUNTERS = (
    "calls",
    "lookups",
    "hit_lookups",
    "unique_ids",
    "unique_hits",
    "misses",
    "inserted",
    "evicted",
    "overflow",
)


def cache_geometry(rows: int, num_items: int, ways: int) -> tuple[int, int]:
    """(sets, ways) of a cache of about `rows` rows over `num_items` ids. A budget of the whole table or more
    gets ceil(num_items / ways) sets, so that no set receives more ids than it has ways and every row fits."""
    if rows < 1:
        raise ValueError(f"a cache needs at least one row, got rows={rows}")
    ways = max(1, min(ways, rows, num_items))
    if rows >= num_items:
        return math.ceil(num_items / ways), ways
    return max(1, rows // ways), ways


class EmbeddingCache:
    """A cache on `device` of the rows of `host` ([V, D], pinned host memory on a GPU machine, any CPU tensor
    in the CPU simulation). `rows` is the budget in rows; the cache holds sets × ways ≤ rows of them."""

    def __init__(
        self,
        host: torch.Tensor,
        rows: int,
        *,
        policy: str = "lfu",
        ways: int = 32,
        device: torch.device | str = "cpu",
    ):
        if policy not in POLICIES:
            raise ValueError(f"unknown eviction policy {policy!r}; choose one of {POLICIES}")
        self.host, self.policy, self.device = host, policy, torch.device(device)
        self.num_items, self.dim = host.shape
        self.sets, self.ways = cache_geometry(rows, self.num_items, ways)
        self.slots = self.sets * self.ways
        self.row_bytes = self.dim * host.element_size()
        self.capacity = -1  # ids per call the spill area holds; grows on the first call (outside any graph)
        with torch.inference_mode():
            self.clock = torch.zeros((), dtype=torch.int64, device=self.device)
            self.counters = torch.zeros(len(COUNTERS), dtype=torch.int64, device=self.device)
        self.reserve(0)

    # ------------------------------------------------------------------ state

    @torch.inference_mode()
    def reserve(self, n: int) -> None:
        """Size the per-call areas for `n` ids: spill rows, spare entries and the zero row (kept state
        moves)."""
        if n <= self.capacity:
            return
        if self.device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(
                f"embedding cache: a call of {n} ids cannot grow the cache while a CUDA graph is "
                f"captured; run one call of this size before capturing"
            )
        s, v, dev = self.slots, self.num_items, self.device
        old = None if self.capacity < 0 else (self.storage, self.slot_of, self.id_of, self.key, self.freq)
        self.storage = torch.zeros(s + n + 1, self.dim, dtype=self.host.dtype, device=dev)
        self.slot_of = torch.full((v + n,), -1, dtype=torch.int32, device=dev)
        self.id_of = torch.full((s + n,), -1, dtype=torch.int64, device=dev)
        self.key = torch.zeros(s + n, dtype=torch.int64, device=dev)
        self.freq = torch.zeros(s + n, dtype=torch.int64, device=dev)
        self.protected = torch.zeros(s + n, dtype=torch.bool, device=dev)
        self.positions = torch.arange(n, device=dev)
        self.way_index = torch.arange(self.ways, device=dev)
        self.zero_row = s + n
        if old is None:
            self._empty_keys()
        else:
            for new, kept, count in zip(
                (self.storage, self.slot_of, self.id_of, self.key, self.freq), old, (s, v, s, s, s)
            ):
                new[:count] = kept[:count]
        self.capacity = n

    def _empty_keys(self) -> None:
        ways = torch.arange(self.slots, device=self.device) % self.ways
        zeros = torch.zeros_like(ways)
        self.key[: self.slots] = victim_keys(self.policy, zeros, zeros, ways, self.ways)

    @torch.inference_mode()
    def clear(self) -> None:
        """Empty the cache (a cold start); the counters and the buffers' addresses stay."""
        self.slot_of.fill_(-1)
        self.id_of.fill_(-1)
        self.freq.zero_()
        self.clock.zero_()
        self._empty_keys()

    @torch.inference_mode()
    def reset_counters(self) -> None:
        self.counters.zero_()

    def read_counters(self) -> dict[str, int]:
        """The counters as ints (a device sync: call it outside any timed region)."""
        return dict(zip(COUNTERS, self.counters.tolist()))

    def occupied(self) -> int:
        """Cached rows now (a device sync)."""
        return int((self.id_of[: self.slots] >= 0).sum())

    # ------------------------------------------------------------------ the step

    @torch.inference_mode()
    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of `storage` holding `ids` ([N] int64 item ids, 0 = padding → the zero row), after fetching
        the misses from host memory and inserting them: one batch of the policy."""
        n = ids.numel()
        self.reserve(n)
        pos = self.positions[:n]
        spare_slot, spare_id = self.slots + pos, self.num_items + pos
        sorted_ids, order = torch.sort(ids)
        first = torch.ones_like(sorted_ids, dtype=torch.bool)
        first[1:] = sorted_ids[1:] != sorted_ids[:-1]
        group = torch.cummax(torch.where(first, pos, 0), 0).values  # each entry's lead position
        count = torch.zeros_like(pos).index_add_(0, group, torch.ones_like(pos))  # occurrences, at the leads
        real = sorted_ids != 0
        lead = first & real
        slot = self.slot_of[sorted_ids].long()
        cached = real & (slot >= 0)
        hit, miss = lead & cached, lead & ~cached

        victim, inserted = self._victims(sorted_ids, slot, hit, miss, pos, spare_slot)
        overflow = miss & ~inserted
        old_id = self.id_of[victim]
        evicted = inserted & (old_id >= 0)
        self.slot_of.index_fill_(0, torch.where(evicted, old_id, spare_id), -1)
        self.slot_of[torch.where(inserted, sorted_ids, spare_id)] = victim.to(torch.int32)
        self.id_of[torch.where(inserted, victim, spare_slot)] = sorted_ids

        self.clock += 1
        touched = torch.where(hit, slot, torch.where(inserted, victim, spare_slot))
        freq = torch.where(hit, self.freq[slot.clamp(min=0)] + count, count).clamp(max=FREQ_MAX)
        self.freq[touched] = freq
        self.key[touched] = victim_keys(
            self.policy, self.clock.expand_as(freq), freq, touched % self.ways, self.ways
        )

        dest = torch.where(inserted, victim, spare_slot)
        fetch_rows(self.storage, dest, self.host, sorted_ids, miss)
        row = torch.where(cached, slot, torch.where(real, dest[group], self.zero_row))
        self.counters += torch.stack(
            [
                torch.ones_like(self.clock),
                real.sum(),
                cached.sum(),
                lead.sum(),
                hit.sum(),
                miss.sum(),
                inserted.sum(),
                evicted.sum(),
                overflow.sum(),
            ]
        )
        return torch.empty_like(row).index_copy_(0, order, row)

    def _victims(self, sorted_ids, slot, hit, miss, pos, spare_slot):
        """(victim slot, whether one was found) for every miss lead: the rank-th smallest unprotected key of
        its set, rank = the miss's place among its set's misses by id."""
        sets, ways = self.sets, self.ways
        set_of = sorted_ids % sets
        # Rank within the set: sort the misses by (set, id); others sort last.
        order_key = torch.where(miss, set_of * self.num_items + sorted_ids, PROTECTED)
        by_set, perm = torch.sort(order_key)
        set_sorted = by_set // self.num_items
        starts = torch.ones_like(miss)
        starts[1:] = set_sorted[1:] != set_sorted[:-1]
        rank_sorted = pos - torch.cummax(torch.where(starts, pos, 0), 0).values
        rank = torch.empty_like(rank_sorted).index_copy_(0, perm, rank_sorted)

        self.protected.zero_()
        self.protected.index_fill_(0, torch.where(hit, slot, spare_slot), True)
        members = set_of.unsqueeze(1) * ways + self.way_index  # [N, ways]: the slots of each id's set
        keys = self.key[members].masked_fill(self.protected[members], PROTECTED)
        keys, way_order = torch.sort(keys, dim=1)
        pick = rank.clamp(max=ways - 1).unsqueeze(1)
        found = miss & (rank < ways) & (keys.gather(1, pick).squeeze(1) != PROTECTED)
        victim = set_of * ways + way_order.gather(1, pick).squeeze(1)
        return victim, found
