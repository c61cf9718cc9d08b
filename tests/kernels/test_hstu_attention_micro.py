"""Dry run of the HSTU micro-benchmark on the CPU (Triton's interpreter, timing stubbed): every provider it
times must first pass its check, and the records carry FLOPs and TFLOP/s. The real run needs a GPU."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.bench.kernel_micro import hstu as hstu_micro

pytest.importorskip("triton")


def _by_provider(records):
    return {r["provider"]: r for r in records}


def test_prefill_providers_pass_their_checks(micro_dry_run):
    lengths = torch.tensor([5, 1, 17, 9])
    records = _by_provider(hstu_micro.bench_prefill(lengths, 2, 16, torch.float32, 3000.0, sweep=False))
    for name in ("triton", "torch-eager-padded", "torch-compile-padded"):
        assert "error" not in records[name], records[name]
        assert records[name]["checked"] and records[name]["tflops"] > 0
    assert records["triton"]["flops"] == hstu_micro.causal_flops(lengths, 2, 16)


def test_decode_providers_pass_their_checks(micro_dry_run):
    records = _by_provider(
        hstu_micro.bench_decode(torch.tensor([3, 0, 20]), 2, 2, 16, torch.float32, 3000.0, sweep=False)
    )
    for name in ("triton", "triton-splits2", "triton-splits4", "torch-eager-padded"):
        assert "error" not in records[name], records[name]
    assert records["triton"]["shape"]["layers"] == 2


def test_causal_flops_count_visible_pairs():
    assert hstu_micro.causal_flops(torch.tensor([1, 3]), heads=2, head_dim=8) == 4 * 8 * 2 * (1 + 6)
