"""Dry run of the HSTU micro-benchmark on the CPU (Triton's interpreter, timing stubbed): every provider it
times must first pass its check, and the records carry FLOPs and TFLOP/s. The real run needs a GPU."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.bench.kernel_micro import hstu as hstu_micro
from genrec_bench.kernels._triton import interpreting

pytest.importorskip("triton")
DRY_RUN_ONLY = pytest.mark.skipif(not interpreting(), reason="a CPU dry run; on a GPU run the real benchmark")

# do_bench's summary as common._do_bench returns it (median, p20, p80 µs and the samples).
STUB_TIMING = {"median_us": 2.0, "p20_us": 1.9, "p80_us": 2.1, "samples_us": [1.9, 2.0, 2.1]}


@pytest.fixture
def dry_run(monkeypatch):
    """The micro-benchmark on CPU tensors: no CUDA graphs, no inductor, a fixed 'time'."""
    monkeypatch.setattr(hstu_micro, "DEVICE", "cpu")
    monkeypatch.setattr(hstu_micro, "copy_us", lambda nbytes: 1.0)
    monkeypatch.setattr(
        hstu_micro,
        "_time",
        lambda fn, inputs: {"timing": STUB_TIMING, "timing_mode": "stub", "launch": STUB_TIMING},
    )
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)


def _by_provider(records):
    return {r["provider"]: r for r in records}


@DRY_RUN_ONLY
def test_prefill_providers_pass_their_checks(dry_run):
    lengths = torch.tensor([5, 1, 17, 9])
    records = _by_provider(hstu_micro.bench_prefill(lengths, 2, 16, torch.float32, 3000.0, sweep=False))
    for name in ("triton", "torch-eager-padded", "torch-compile-padded"):
        assert "error" not in records[name], records[name]
        assert records[name]["checked"] and records[name]["tflops"] > 0
    assert records["triton"]["flops"] == hstu_micro.causal_flops(lengths, 2, 16)


@DRY_RUN_ONLY
def test_decode_providers_pass_their_checks(dry_run):
    records = _by_provider(
        hstu_micro.bench_decode(torch.tensor([3, 0, 20]), 2, 2, 16, torch.float32, 3000.0, sweep=False)
    )
    for name in ("triton", "triton-splits2", "triton-splits4", "torch-eager-padded"):
        assert "error" not in records[name], records[name]
    assert records["triton"]["shape"]["layers"] == 2


def test_causal_flops_count_visible_pairs():
    assert hstu_micro.causal_flops(torch.tensor([1, 3]), heads=2, head_dim=8) == 4 * 8 * 2 * (1 + 6)
