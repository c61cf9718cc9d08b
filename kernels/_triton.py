"""Lazy access to triton, shared by the kernels' Triton paths.

Kept apart from the ops so that ``import kernels`` never imports triton, and so that every op reports a
missing triton, or a tensor it cannot run on, with the same words.
"""

from __future__ import annotations

import importlib
import os

import torch


class TritonUnavailable(ImportError):
    """``kernel="triton"`` was asked for where triton cannot run."""


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def load_triton_module(op: str, module: str):
    """Import ``module`` (an op's Triton implementation), turning a missing triton into a clear error."""
    try:
        import triton  # noqa: F401  (only to find out whether it is there)
    except ImportError as exc:
        raise TritonUnavailable(
            f"{op} | kernel='triton' needs the 'triton' package, which is not installed "
            f"(install the 'kernels' extra: pip install 'genrec-bench[kernels]'), or use kernel='torch'"
        ) from exc
    return importlib.import_module(module)


def check_device(op: str, *tensors: torch.Tensor) -> None:
    """Refuse tensors the Triton path cannot run on: CUDA tensors, or CPU tensors under the interpreter."""
    for t in tensors:
        if t.device.type == "cuda":
            continue
        if t.device.type == "cpu" and interpreting():
            continue
        raise ValueError(
            f"{op} | kernel='triton' runs on CUDA tensors (or on CPU tensors with TRITON_INTERPRET=1 set "
            f"before triton is imported), but got a tensor on {t.device}; use kernel='torch' there"
        )
