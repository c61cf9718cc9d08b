"""Placements through the model's phases on CPU: host and cached give exactly the device model's answers,
count what they did, and the settings resolve preset → matrix section → cell label."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.models import PHASE_INPUTS, build_model, draw, phase_inputs, preset
from genrec_bench.models.embedding import (
    CachedTable,
    HostTable,
    cache_rows,
    phase_problem,
    placed_copy,
    storage_dtype,
    table_init,
)
from genrec_bench.models.embedding.spec import EmbeddingError, EmbeddingSpec, resolve


@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny")


def placed(model, label, **section):
    spec = resolve(model.cfg.embedding, section, label)
    return placed_copy(model.variant(embedding=spec), "cpu", torch.float32)


@pytest.mark.parametrize(
    "label", ["host", "cached-10pct", "cached-1pct-lru", "cached-100pct", "cached-0.1mb"]
)
@torch.inference_mode()
def test_every_phase_answers_exactly_as_on_the_device(tiny, label):
    model = placed(tiny, label)
    for phase in PHASE_INPUTS:
        for seed in range(3):  # several calls: later ones hit what earlier ones cached
            drawn = draw(tiny.cfg, phase, 6, 24, seed=seed)
            want = getattr(tiny, phase)(*phase_inputs(tiny, phase, drawn))
            got = getattr(model, phase)(*phase_inputs(model, phase, drawn))
            assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1]), (phase, seed)


@torch.inference_mode()
def test_counters_count_real_lookups_and_bytes(tiny):
    drawn = draw(tiny.cfg, "rank", 4, 16, seed=1)
    real = int((drawn["ids"] != 0).sum() + (drawn["candidates"] != 0).sum())
    host, cached = placed(tiny, "host"), placed(tiny, "cached-100pct")
    for model in (host, cached):
        model.rank(*phase_inputs(model, "rank", drawn))
    assert host.item_emb.stats() == {
        "calls": 1,
        "lookups": real,
        "misses": real,
        "bytes_from_host": real * tiny.cfg.d_model * 4,
    }
    first = cached.item_emb.stats()
    unique = len({int(i) for i in torch.cat([drawn["ids"].flatten(), drawn["candidates"].flatten()]) if i})
    assert (first["lookups"], first["unique_ids"], first["misses"], first["hit_lookups"]) == (
        real,
        unique,
        unique,
        0,
    )
    cached.rank(*phase_inputs(cached, "rank", drawn))
    second = cached.item_emb.stats()
    assert second["hit_lookups"] - first["hit_lookups"] == real and second["misses"] == unique  # all hits now
    cached.item_emb.reset_counters()
    assert cached.item_emb.stats()["calls"] == 0


def test_placed_copy_builds_each_placement_and_leaves_the_source_alone(tiny):
    before = tiny.item_emb.weight.clone()
    assert isinstance(placed(tiny, "host").item_emb, HostTable)
    assert isinstance(placed(tiny, "cached-10pct").item_emb, CachedTable)
    device = placed(tiny, "device").item_emb
    assert (
        isinstance(device, torch.nn.Embedding) and device.weight.data_ptr() != tiny.item_emb.weight.data_ptr()
    )
    assert torch.equal(tiny.item_emb.weight, before) and isinstance(tiny.item_emb, torch.nn.Embedding)
    with pytest.raises(EmbeddingError, match="already placed"):
        placed_copy(placed(tiny, "host"), "cpu", torch.float32)


@torch.inference_mode()
def test_fp16_storage_under_an_fp32_model_rounds_rows_only(tiny):
    model = placed(tiny, "cached-10pct", storage="fp16")
    assert model.item_emb.host.dtype == torch.float16 and model.item_emb.row_bytes == tiny.cfg.d_model * 2
    drawn = draw(tiny.cfg, "rank", 4, 16, seed=3)
    want = tiny.rank(*phase_inputs(tiny, "rank", drawn))[0]
    got = model.rank(*phase_inputs(model, "rank", drawn))[0]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


def test_settings_resolve_preset_then_section_then_label():
    base = EmbeddingSpec(policy="lru", warm_batches=3)
    spec = resolve(base, {"policy": "lfu", "pool_batches": 5}, "cached-25pct")
    assert (
        spec.placement,
        spec.fraction,
        spec.gpu_budget_mb,
        spec.policy,
        spec.warm_batches,
        spec.pool_batches,
    ) == ("cached", 0.25, None, "lfu", 3, 5)
    assert resolve(base, {"policy": "lfu"}, "cached-64mb-lru").policy == "lru"  # the label wins
    assert resolve(EmbeddingSpec(placement="cached", fraction=0.1), None, "host").fraction is None
    assert resolve(base, None, "") == base and not spec.cold and EmbeddingSpec(warm_batches=0).cold
    assert spec.budget_label() == "25pct" and resolve(base, None, "cached-1.5mb").budget_label() == "1.5mb"


def test_budget_rows_and_storage_dtype():
    assert cache_rows(EmbeddingSpec(placement="cached", fraction=0.1), 2000, 128) == 200
    assert cache_rows(EmbeddingSpec(placement="cached", gpu_budget_mb=1.0), 2000, 128) == 8192
    assert cache_rows(EmbeddingSpec(placement="cached", fraction=1e-9), 2000, 128) == 1
    assert storage_dtype(EmbeddingSpec(), torch.bfloat16) == torch.bfloat16
    assert storage_dtype(EmbeddingSpec(storage="fp16"), torch.float32) == torch.float16


def test_only_rank_runs_off_the_device():
    assert phase_problem("rank", "cached") is None and phase_problem("prefill", "device") is None
    assert "scores the full catalogue" in phase_problem("decode", "host")


def test_large_tables_initialise_in_seeded_chunks(monkeypatch):
    monkeypatch.setattr(table_init, "PARALLEL_FROM", 1)
    monkeypatch.setattr(table_init, "CHUNK_ROWS", 7)
    a, b = table_init.item_table(50, 4, seed=3), table_init.item_table(50, 4, seed=3)
    assert torch.equal(a.weight, b.weight) and not torch.equal(
        a.weight, table_init.item_table(50, 4, 4).weight
    )
    assert bool((a.weight[0] == 0).all()) and a.padding_idx == 0
    assert 0.3 < float(a.weight.detach()[1:].std()) < 0.7  # N(0, 1/d) with d = 4
    with torch.inference_mode():  # as the oracle builds its reference model (the first H100 run failed here)
        assert torch.equal(table_init.item_table(50, 4, seed=3).weight, a.weight)


def test_draw_on_a_named_device_is_the_default_stream():
    cfg = preset("tiny")
    a, b = draw(cfg, "rank", 3, 8, seed=5), draw(cfg, "rank", 3, 8, seed=5, device="cpu")
    assert all(torch.equal(a[k], b[k]) for k in a)
