"""The embedding cache against the pure-Python model of its policy: random id streams with repeats and
padding, a budget of one row, a budget larger than the table, eviction order under LRU and LFU. CPU only (the
CPU is the "device" and its memory the "host": the same cache code path a GPU runs, with the torch row
fetch)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genrec_bench.models.embedding import COUNTERS, EmbeddingCache, cache_geometry
from genrec_bench.models.embedding.policies import FREQ_MAX, PROTECTED, victim_keys
from genrec_bench.models.embedding.reference import ReferenceCache

DIM = 3


def host_table(num_items: int) -> torch.Tensor:
    """Row i holds i in every column (row 0, padding, zero): a wrong row is easy to see."""
    return torch.arange(num_items, dtype=torch.float32).unsqueeze(1).repeat(1, DIM)


@st.composite
def id_streams(draw, *, min_items: int = 2, max_items: int = 40, max_batches: int = 12, max_batch: int = 24):
    """(num_items, batches): batches of ids in [0, num_items) with repeats, padding (0) and a popular few."""
    num_items = draw(st.integers(min_items, max_items))
    popular = st.integers(1, min(3, num_items - 1))
    ids = st.one_of(st.just(0), popular, st.integers(0, num_items - 1))
    batches = draw(st.lists(st.lists(ids, min_size=1, max_size=max_batch), min_size=1, max_size=max_batches))
    return num_items, batches


def check_against_reference(num_items, batches, rows, policy, ways):
    """Run both caches batch by batch; rows, cached slots and counters must agree after every batch."""
    host = host_table(num_items)
    cache = EmbeddingCache(host, rows, policy=policy, ways=ways)
    model = ReferenceCache(num_items, rows, policy, ways)
    for batch in batches:
        ids = torch.tensor(batch, dtype=torch.int64)
        slots = cache.lookup(ids)
        model.step(batch)
        assert torch.equal(cache.storage[slots], host[ids]), f"wrong rows for {batch}"
        held = {item: slot for slot, item in enumerate(cache.id_of[: cache.slots].tolist()) if item >= 0}
        assert held == model.cached(), f"cached slots differ after {batch}"
        assert cache.read_counters() == {name: model.counters[name] for name in COUNTERS}
    return cache, model


@given(
    stream=id_streams(),
    rows=st.integers(1, 48),
    ways=st.sampled_from([1, 2, 4, 32]),
    policy=st.sampled_from(["lru", "lfu"]),
)
def test_the_cache_follows_its_policy_model(stream, rows, ways, policy):
    num_items, batches = stream
    check_against_reference(num_items, batches, rows, policy, ways)


@given(stream=id_streams(), policy=st.sampled_from(["lru", "lfu"]))
def test_a_budget_of_one_row(stream, policy):
    num_items, batches = stream
    cache, model = check_against_reference(num_items, batches, 1, policy, 32)
    assert cache.slots == 1 and model.counters["inserted"] <= len(batches)


@given(
    stream=id_streams(),
    extra=st.integers(0, 50),
    ways=st.sampled_from([1, 4, 32]),
    policy=st.sampled_from(["lru", "lfu"]),
)
def test_a_budget_larger_than_the_table_keeps_every_row(stream, extra, ways, policy):
    num_items, batches = stream
    cache, model = check_against_reference(num_items, batches, num_items + extra, policy, ways)
    assert model.counters["evicted"] == model.counters["overflow"] == 0
    cache.reset_counters()
    seen = sorted({i for batch in batches for i in batch if i})
    cache.lookup(torch.tensor(seen or [0]))
    counts = cache.read_counters()
    assert counts["hit_lookups"] == counts["lookups"] == len(seen)  # everything seen once is still there


def lookups(cache, *batches):
    for batch in batches:
        cache.lookup(torch.tensor(batch))
    return {item for item in cache.id_of[: cache.slots].tolist() if item >= 0}


@pytest.mark.parametrize("policy, kept", [("lru", {2, 3}), ("lfu", {1, 3})])
def test_eviction_order_lru_against_lfu(policy, kept):
    # Two rows; item 1 looked up three times, then 2 once, then 3: LRU drops 1 (least recent), LFU drops 2.
    cache = EmbeddingCache(host_table(10), 2, policy=policy, ways=32)
    assert lookups(cache, [1, 1, 1], [2], [3]) == kept


def test_lfu_ties_go_to_the_least_recently_used():
    cache = EmbeddingCache(host_table(10), 2, policy="lfu", ways=32)
    assert lookups(cache, [1], [2], [1], [2], [3]) == {2, 3}  # 1 and 2 both counted twice; 1 is older


def test_hits_of_the_batch_are_never_evicted_and_extra_misses_overflow():
    cache = EmbeddingCache(host_table(10), 2, policy="lru", ways=32)
    lookups(cache, [1, 2])
    slots = cache.lookup(torch.tensor([1, 2, 3, 4]))  # both rows hit: 3 and 4 have nowhere to go
    assert torch.equal(cache.storage[slots], host_table(10)[[1, 2, 3, 4]])
    counts = cache.read_counters()
    assert (counts["overflow"], counts["inserted"], counts["evicted"]) == (2, 2, 0)
    assert lookups(cache) == {1, 2}


def test_clear_and_reset_keep_the_buffers():
    cache = EmbeddingCache(host_table(20), 8, policy="lfu", ways=4)
    lookups(cache, [1, 2, 3], [4, 5])
    storage, index = cache.storage.data_ptr(), cache.slot_of.data_ptr()
    cache.reset_counters()
    assert set(cache.read_counters().values()) == {0}
    cache.clear()
    assert cache.occupied() == 0 and (cache.storage.data_ptr(), cache.slot_of.data_ptr()) == (storage, index)
    cache.lookup(torch.tensor([1, 2]))
    assert cache.read_counters()["hit_lookups"] == 0  # cold again


def test_padding_is_never_cached_and_reads_zero():
    cache = EmbeddingCache(host_table(10), 4, policy="lfu", ways=32)
    slots = cache.lookup(torch.tensor([0, 0, 5, 0]))
    assert torch.equal(cache.storage[slots], host_table(10)[[0, 0, 5, 0]])
    assert cache.read_counters()["lookups"] == 1 and lookups(cache) == {5}


@pytest.mark.parametrize(
    "rows, items, ways, want",
    [
        (1, 100, 32, (1, 1)),
        (100, 1000, 32, (3, 32)),
        (1000, 100, 32, (4, 32)),
        (7, 100, 4, (1, 4)),
        (64, 64, 32, (2, 32)),
    ],
)
def test_cache_geometry(rows, items, ways, want):
    assert cache_geometry(rows, items, ways) == want


def test_victim_keys_order_empty_then_policy_then_way():
    ways = 4

    def key(policy, stamp, freq, way):
        return int(victim_keys(policy, torch.tensor(stamp), torch.tensor(freq), torch.tensor(way), ways))

    assert key("lru", 0, 0, 3) < key("lru", 1, 9, 0) < key("lru", 2, 1, 0) < key("lru", 2, 1, 1)
    assert key("lfu", 0, 0, 3) < key("lfu", 9, 1, 0) < key("lfu", 1, 2, 0) < key("lfu", 2, 2, 0)
    assert key("lfu", 2**40, FREQ_MAX * 4, 3) < PROTECTED  # saturated fields stay below the protected mark
    with pytest.raises(ValueError, match="unknown eviction policy 'fifo'"):
        victim_keys("fifo", torch.tensor(0), torch.tensor(0), torch.tensor(0), ways)
