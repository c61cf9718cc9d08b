"""Dry run of the catalogue top-k micro-benchmark on the CPU (Triton's interpreter, timing stubbed)."""
from __future__ import annotations

import pytest
import torch

from bench.kernels import hstu_micro, topk_micro
from kernels._triton import interpreting

pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(not interpreting(), reason="a CPU dry run; on a GPU run the real benchmark")


def test_topk_providers_are_checked_and_recorded(monkeypatch):
    monkeypatch.setattr(topk_micro, "DEVICE", "cpu")
    monkeypatch.setattr(hstu_micro, "copy_us", lambda nbytes: 1.0)
    monkeypatch.setattr(hstu_micro, "_time", lambda fn, inputs: {
        "timing": (2.0, 1.9, 2.1), "timing_mode": "stub", "launch": (2.5, 2.4, 2.6)})
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    records = {r["provider"]: r for r in topk_micro.bench_topk(4, 300, 24, 10, torch.float32, 3000.0, sweep=False)}
    assert records["triton"]["exactness"] == "exact"
    assert records["torch-eager-native"]["exactness"] == "exact"
    assert records["triton"]["flops"] == 2.0 * 4 * 300 * 24
