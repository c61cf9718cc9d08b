"""Dry runs of the interaction and jagged-pooling micro-benchmarks, and of what every micro-benchmark shares
(bench/kernel_micro/common.py), on the CPU: Triton's interpreter, timing stubbed, checks for real."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.bench.kernel_micro import common
from genrec_bench.bench.kernel_micro.interaction import bench_interaction
from genrec_bench.bench.kernel_micro.jagged_pooling import bench_jagged

pytest.importorskip("triton")


def _by_provider(records):
    return {r["provider"]: r for r in records}


def test_interaction_providers_pass_their_checks(micro_dry_run):
    records = _by_provider(bench_interaction(8, 5, 16, torch.float32, 3000.0, sweep=False))
    assert set(records) == {
        "triton",
        "torch-eager-fp32ref",
        "torch-compile-fp32ref",
        "torch-eager-native",
        "torch-compile-native",
    }
    for r in records.values():
        assert "error" not in r and r["checked"] and r["bytes"] == (8 * 5 * 16 + 8 * 10) * 4, r


def test_jagged_pooling_providers_pass_their_checks(micro_dry_run):
    records = _by_provider(bench_jagged(4, 3, 16, 50, torch.float32, "mean", 3000.0, sweep=False))
    assert "torch-embedding_bag" in records
    for r in records.values():
        assert "error" not in r and r["checked"] and r["shape"]["mode"] == "mean", r


def test_a_wrong_provider_is_recorded_not_timed_and_selection_filters(micro_dry_run, monkeypatch):
    x = torch.arange(6.0).reshape(2, 3)
    want = x * 2
    providers = {"right": lambda t: t * 2, "wrong": lambda t: t * 2 + 1, "other": lambda t: t * 2}
    check = common.reference_check(want, torch.float32, terms=1)
    monkeypatch.setattr(common, "SELECTED", ())
    common.select("right,wrong")
    records = _by_provider(
        common.run_providers(
            "op",
            providers,
            dict.fromkeys(providers, check),
            [(x,)],
            shape={},
            dtype=torch.float32,
            nbytes=48,
            hbm_gbps=3000.0,
            flops=12.0,
        )
    )
    assert set(records) == {"right", "wrong"}  # "other" is not selected
    assert records["right"]["median_us"] == 2.0 and records["right"]["tflops"] == round(12.0 / 2.0 / 1e6, 2)
    assert "median_us" not in records["wrong"] and "Tensor-likes are not close" in records["wrong"]["error"]
    assert "ERROR" in common.line(records["wrong"]) and "TFLOP/s" in common.line(records["right"])
