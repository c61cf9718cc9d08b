"""Kernel fuzz tests: on a machine without CUDA the Triton kernels run in Triton's CPU interpreter.

TRITON_INTERPRET must be in the environment before the kernels' Triton modules are imported (``@triton.jit``
reads it when it decorates), so it is set here, when pytest loads this folder, and only where no CUDA device
is present; an explicit TRITON_INTERPRET in the environment wins. Hypothesis profiles come from the root
conftest (``ci`` by default, ``--hypothesis-profile=nightly`` on the GPU machine).
"""

from __future__ import annotations

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

#: Where the fuzz tests put their tensors: the GPU when there is one, else the CPU (interpreter).
DEVICE = "cuda" if HAS_CUDA else "cpu"


@pytest.fixture(scope="session")
def device() -> str:
    """The device the kernels run on in this session (session-scoped, so it is usable with @given)."""
    return DEVICE


# do_bench's summary as common._do_bench returns it (median, p20, p80 µs and the samples).
STUB_TIMING = {"median_us": 2.0, "p20_us": 1.9, "p80_us": 2.1, "samples_us": [1.9, 2.0, 2.1]}


@pytest.fixture
def micro_dry_run(monkeypatch):
    """A kernel micro-benchmark on CPU tensors (Triton's interpreter): no CUDA graphs, no inductor, a fixed
    'time', so every provider's check runs for real and only the timing is stubbed. Without CUDA only: on a
    GPU run the real benchmark."""
    if HAS_CUDA:
        pytest.skip("a CPU dry run; on a GPU run the real micro-benchmark")
    from genrec_bench.bench.kernel_micro import common

    monkeypatch.setattr(common, "DEVICE", "cpu")
    monkeypatch.setattr(common, "copy_us", lambda nbytes: 1.0)
    monkeypatch.setattr(
        common,
        "time_op",
        lambda fn, inputs: {"timing": STUB_TIMING, "timing_mode": "stub", "launch": STUB_TIMING},
    )
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
