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
