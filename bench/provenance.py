"""What really ran in a cell — the dtype of the closure's raw output before any cast, which kernel
implementation each op's dispatch took, the ONNX graph's declared types — and the contradictions with the
cell's label.

A bf16 cell that silently computes in fp32, an fp16 ONNX cell that loads the fp32 graph, a `kernel: triton`
cell that runs the torch reference: each gives perfect numbers, so only this check catches them. The record
keeps the provenance; a contradiction fails the cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
# ONNX Runtime's type strings of the scores output (its I/O types and OrtValue.data_type()).
ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16",
    "tensor(double)": "float64",
}


def raw_dtype(value: Any) -> str | None:
    """The element type of one raw output (torch tensor, numpy array or ONNX Runtime OrtValue), or None."""
    if isinstance(value, torch.Tensor):
        return str(value.dtype).removeprefix("torch.")
    if isinstance(value, np.ndarray):
        return str(value.dtype)
    data_type = getattr(value, "data_type", None)
    if callable(data_type):  # an OrtValue
        return ONNX_TYPES.get(data_type(), data_type())
    return None


def provenance(result: Any, dispatched: dict[str, int], session_says: dict) -> dict:
    """The record's `provenance`: the closure's own output dtype and the kernels dispatched while the session
    was prepared and first called, with what the session itself reports on top (a served model's own
    account)."""
    out = {
        "output_dtype": raw_dtype(result[0]) if isinstance(result, (tuple, list)) and result else None,
        "output_dtype_source": "the timed closure's raw scores, before any cast",
        "kernels": dict(dispatched),
        "kernels_source": "implementations counted while the session was prepared and first called",
    }
    out.update(session_says)
    return out


def contradictions(cell, record: dict) -> list[str]:
    """How the provenance contradicts the cell's precision and kernel labels (empty when it does not)."""
    problems = []
    want = DTYPE_NAMES[cell.precision]
    got = record.get("output_dtype")
    if got is not None and got != want:
        problems.append(f"the scores were computed in {got}, not the cell's {cell.precision} ({want})")
    for name, declared in (record.get("graph_io") or {}).items():
        if name == "scores" and ONNX_TYPES.get(declared, declared) != want:
            problems.append(f"the ONNX graph declares scores as {declared}, not the cell's {cell.precision}")
    kernels = record.get("kernels")
    if kernels is not None:
        other = sorted(k for k in kernels if not k.endswith(f":{cell.kernel}"))
        if other:
            problems.append(f"kernel={cell.kernel} but the dispatch took {', '.join(other)}")
        if cell.kernel != "torch" and not any(k.endswith(f":{cell.kernel}") for k in kernels):
            problems.append(f"kernel={cell.kernel} but no {cell.kernel} kernel ran")
    return problems
