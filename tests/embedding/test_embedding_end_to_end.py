"""Placements through the real bench on CPU (`pytest bench/ --matrix ...` in a subprocess): every placement of
the tiny rank passes the oracle, its record's `embedding` section validates and counts the timed rounds only,
a cold cell starts empty, and cells a placement cannot run are skipped with the reason."""

from __future__ import annotations

import jsonschema
import pytest

from genrec_bench.bench.record import schema

MATRIX = """\
name: embedding-e2e
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [4], seq_len: [16], phase: [rank],
       embedding: [device, host, cached-10pct, cached-1pct-lru]}
include:
  - {embedding: cached-100pct, precision: bf16, reason: "bf16 storage follows the cell's precision"}
  - {phase: [prefill, decode], embedding: cached-10pct, reason: "shows the catalogue skip"}
  - {backend: ort-cpu, embedding: host, reason: "shows the backend skip"}
embedding: {warm_lookups: 500, warm_batches: 2, pool_batches: 8}
timing: {warmup_rounds: 2, rounds: 6, min_rounds: 3, max_time_s: 0.5}
"""
PREFIX = "tiny-torch-cpu-fp32-b4-s16"


@pytest.fixture(scope="module")
def records(tmp_path_factory, run_bench):
    proc, doc = run_bench(tmp_path_factory.mktemp("emb"), MATRIX, "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, {b["extra_info"]["cell"]["id"]: b["extra_info"] for b in doc["benchmarks"]}


def test_every_placement_passes_the_oracle_and_validates(records):
    _, by_id = records
    assert sorted(by_id) == sorted(
        [
            f"{PREFIX}-rank-emb-device",
            f"{PREFIX}-rank-emb-host",
            f"{PREFIX}-rank-emb-cached-10pct",
            f"{PREFIX}-rank-emb-cached-1pct-lru",
            "tiny-torch-cpu-bf16-b4-s16-rank-emb-cached-100pct",
        ]
    )
    for record in by_id.values():
        jsonschema.validate(record, schema())
        assert record["numerics"]["passed"] is True
        assert record["cell"]["embedding"] == record["embedding"]["label"]
        assert record["embedding"]["traffic"]["distinct_batches"] == 8


def test_the_embedding_section_counts_the_timed_rounds(records):
    _, by_id = records
    cached = by_id[f"{PREFIX}-rank-emb-cached-10pct"]["embedding"]
    rounds = by_id[f"{PREFIX}-rank-emb-cached-10pct"]["timer"]["rounds"]
    assert cached["calls"] == rounds and cached["placement"] == "cached" and cached["policy"] == "lfu"
    assert cached["budget"]["fraction"] == 0.1 and cached["budget"]["rows_cached"] == 192  # 6 sets of 32 ways
    assert 0 <= cached["hit_rate"] <= 1 and cached["per_call"]["bytes_from_host"] >= 0
    assert cached["warm"]["warmed"] is True and "500 ids" in cached["warm"]["how"]
    assert 0 < cached["cache_time"]["share"] < 1 and cached["cache_time"]["measured_in"] == "eager"
    assert cached["zero_copy"].startswith("CPU simulation")
    host = by_id[f"{PREFIX}-rank-emb-host"]["embedding"]
    assert host["hit_rate"] is None and host["per_call"]["rows_from_host"] == host["per_call"]["lookups"] > 0
    device = by_id[f"{PREFIX}-rank-emb-device"]["embedding"]
    assert device["placement"] == "device" and device["budget"] is None and "hit_rate" not in device
    assert by_id[f"{PREFIX}-rank-emb-cached-1pct-lru"]["embedding"]["policy"] == "lru"
    assert by_id["tiny-torch-cpu-bf16-b4-s16-rank-emb-cached-100pct"]["embedding"]["storage"] == "bfloat16"


def test_off_device_placements_skip_with_the_reason(records):
    proc, _ = records
    assert (
        "prefill scores the full catalogue" in proc.stdout
        and "decode scores the full catalogue" in proc.stdout
    )
    assert "placement=host is not supported: ort-cpu holds the whole item table on its device" in proc.stdout


def test_a_cold_cell_starts_its_timed_rounds_empty(tmp_path, run_bench):
    cold = MATRIX.replace("warm_lookups: 500, warm_batches: 2", "warm_lookups: 0, warm_batches: 0")
    proc, doc = run_bench(tmp_path, cold, "-k", "cached-100pct")
    assert proc.returncode == 0, proc.stdout[-3000:]
    (record,) = [b["extra_info"] for b in doc["benchmarks"]]
    section = record["embedding"]
    assert section["warm"]["warmed"] is False and section["warm"]["how"].startswith("cold")
    # The whole table fits: every miss of the timed rounds is a first sight, counted from an empty cache.
    assert (
        section["counters"]["evicted"] == 0
        and section["counters"]["misses"] == section["counters"]["inserted"]
    )
    assert section["counters"]["misses"] >= section["counters"]["unique_ids"] / record["timer"]["rounds"]
