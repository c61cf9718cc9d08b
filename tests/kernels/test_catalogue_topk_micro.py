"""Dry run of the catalogue top-k micro-benchmark on the CPU (Triton's interpreter, timing stubbed)."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.bench.kernel_micro import topk as topk_micro

pytest.importorskip("triton")


def test_topk_providers_are_checked_and_recorded(micro_dry_run):
    records = {
        r["provider"]: r for r in topk_micro.bench_topk(4, 300, 24, 10, torch.float32, 3000.0, sweep=False)
    }
    assert records["triton"]["exactness"] == "exact"
    assert records["torch-eager-native"]["exactness"] == "exact"
    assert records["triton"]["flops"] == 2.0 * 4 * 300 * 24
