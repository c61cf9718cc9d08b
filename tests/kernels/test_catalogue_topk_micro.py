"""Dry run of the catalogue top-k micro-benchmark on the CPU (Triton's interpreter, timing stubbed)."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.bench.kernel_micro import hstu as hstu_micro
from genrec_bench.bench.kernel_micro import topk as topk_micro
from genrec_bench.kernels._triton import interpreting

pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(not interpreting(), reason="a CPU dry run; on a GPU run the real benchmark")

# do_bench's summary as common._do_bench returns it (median, p20, p80 µs and the samples).
STUB_TIMING = {"median_us": 2.0, "p20_us": 1.9, "p80_us": 2.1, "samples_us": [1.9, 2.0, 2.1]}


def test_topk_providers_are_checked_and_recorded(monkeypatch):
    monkeypatch.setattr(topk_micro, "DEVICE", "cpu")
    monkeypatch.setattr(hstu_micro, "copy_us", lambda nbytes: 1.0)
    monkeypatch.setattr(
        hstu_micro,
        "_time",
        lambda fn, inputs: {"timing": STUB_TIMING, "timing_mode": "stub", "launch": STUB_TIMING},
    )
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    records = {
        r["provider"]: r for r in topk_micro.bench_topk(4, 300, 24, 10, torch.float32, 3000.0, sweep=False)
    }
    assert records["triton"]["exactness"] == "exact"
    assert records["torch-eager-native"]["exactness"] == "exact"
    assert records["triton"]["flops"] == 2.0 * 4 * 300 * 24
