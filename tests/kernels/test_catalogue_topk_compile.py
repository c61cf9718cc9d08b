"""The catalogue top-k kernels compile for Hopper (sm_90) at every tile config and dtype, on any machine.

``triton.compile`` with an explicit target needs no GPU, only ptxas (Triton's NVIDIA backend ships one). It
runs in a child process without TRITON_INTERPRET, which this folder's conftest sets where there is no GPU (the
interpreter replaces the kernels). A config that fails to build, spills in 16 bits, or asks for more shared
memory than an H100/H200 block has fails here rather than on the GPU machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]
HOPPER_SHARED = 227 * 1024  # bytes of shared memory one block may use on sm_90


@pytest.fixture(scope="module")
def records() -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "kernels.catalogue_topk.compile_check", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_kernel_and_dtype_builds_for_sm90(records):
    from genrec_bench.kernels.catalogue_topk import triton as impl

    built = {(r["kernel"], r["dtype"]) for r in records if r["d"] == 256}
    assert built == {
        (kernel, dtype) for kernel in ("scan", "finish") for dtype in ("float32", "float16", "bfloat16")
    }
    fp16_configs = {
        r["config"] for r in records if r["kernel"] == "scan" and r["dtype"] == "float16" and r["d"] == 256
    }
    assert len(fp16_configs) == len(impl.GPU_CONFIGS)  # none pruned at the benchmark's shape
    assert {r["d"] for r in records} == {64, 256, 1024} and not all(r["resident"] for r in records)


def test_builds_fit_hopper_and_use_its_tensor_cores(records):
    for r in records:
        assert r["shared"] <= HOPPER_SHARED, r
        assert r["wgmma"], r
        if r["dtype"] != "float32":  # fp32's tf32x3 splits may spill a little; 16 bits must not
            assert r["spill_stores"] == 0 and r["spill_loads"] == 0, r
