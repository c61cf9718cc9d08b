"""Dispatch: unknown kernels and modes raise, importing kernels never imports triton, a missing triton is
reported by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from genrec_bench.kernels import KERNELS
from genrec_bench.kernels._triton import TritonUnavailable
from genrec_bench.kernels.interaction import interaction
from genrec_bench.kernels.jagged_pooling import jagged_pooling


def _jagged_inputs():
    return torch.tensor([1, 0, 2]), torch.tensor([0, 2, 3]), torch.randn(4, 8)


def test_kernel_choices():
    assert KERNELS == ("torch", "triton")


@pytest.mark.parametrize("kernel", ["cuda", "Triton", "", None])
def test_unknown_kernel_raises_naming_value_and_choices(kernel):
    with pytest.raises(ValueError, match=r"unknown kernel=.*choose one of \('torch', 'triton'\)"):
        interaction(torch.randn(2, 3, 4), kernel=kernel)
    with pytest.raises(ValueError, match=r"unknown kernel=.*choose one of \('torch', 'triton'\)"):
        jagged_pooling(*_jagged_inputs(), kernel=kernel)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match=r"unknown mode='max'; choose one of \('sum', 'mean'\)"):
        jagged_pooling(*_jagged_inputs(), mode="max")


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"x must be \[B, F, D\]"):
        interaction(torch.randn(2, 3))
    with pytest.raises(ValueError, match="dense must be"):
        interaction(torch.randn(2, 3, 4), dense=torch.randn(2, 5, dtype=torch.float16))
    values, offsets, table = _jagged_inputs()
    with pytest.raises(ValueError, match="must be int64"):
        jagged_pooling(values.int(), offsets, table)


def test_importing_kernels_does_not_import_triton():
    code = (
        "import sys, kernels, kernels.interaction, kernels.jagged_pooling, kernels.strategies, "
        "kernels.tolerances;"
        "sys.exit(1 if 'triton' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_triton_is_reported_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
    with pytest.raises(TritonUnavailable, match="needs the 'triton' package"):
        interaction(torch.randn(2, 3, 4), kernel="triton")
    with pytest.raises(TritonUnavailable, match="needs the 'triton' package"):
        jagged_pooling(*_jagged_inputs(), kernel="triton")


def test_cpu_tensors_without_interpreter_are_refused(monkeypatch):
    pytest.importorskip("triton")
    from genrec_bench.kernels._triton import check_device

    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="runs on CUDA tensors"):
        check_device("interaction", torch.randn(2))
