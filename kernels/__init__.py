"""Custom kernels of the generative recommender, each with a torch reference and a Triton kernel.

Every op lives in its own package (``kernels/<op>/``) with ``reference.py`` (plain torch, upcasts to fp32,
ONNX-exportable), ``triton.py`` (the fused Triton kernel) and one dispatch function in ``__init__.py`` that
takes ``kernel=`` and raises on an unknown choice. Importing this package never imports triton: the Triton
path imports it on first use, so the harness imports on machines without it.
"""

from __future__ import annotations

import importlib.util

from ._triton import interpreting

#: The implementations every op's dispatch function takes as ``kernel=``: the torch reference and the Triton
#: kernel.
KERNELS = ("torch", "triton")


#: How many times each implementation ran since import, as "op:implementation" → count. Counted by the
#: implementations themselves, so a harness can tell which one really ran (take a copy before and after).
#: Under torch.compile the increment is a traced side effect replayed on every call (no graph break); under
#: CUDA graphs it counts at capture, the only time the Python runs.
DISPATCHED: dict[str, int] = {}


def count_dispatch(op: str, implementation: str) -> None:
    """Record that `implementation` of `op` ran (called by each implementation's entry function)."""
    key = f"{op}:{implementation}"
    DISPATCHED[key] = DISPATCHED.get(key, 0) + 1


def dispatched_since(before: dict[str, int]) -> dict[str, int]:
    """The implementations that ran since the copy `before` of DISPATCHED was taken, with their counts."""
    return {k: n - before.get(k, 0) for k, n in DISPATCHED.items() if n > before.get(k, 0)}


def check_kernel(op: str, kernel: str) -> None:
    """Raise ValueError naming the op, the value and the choices for a ``kernel=`` no op implements."""
    if kernel not in KERNELS:
        raise ValueError(f"{op} | unknown kernel={kernel!r}; choose one of {KERNELS}")


def kernel_availability(kernel: str, device_type: str) -> tuple[bool, str]:
    """Whether `kernel` can run on tensors of `device_type` ("cpu" or "cuda") here, and if not, why.

    Answers without importing triton, so a matrix can skip such cells with the reason instead of failing them.
    """
    if kernel not in KERNELS:
        return False, f"unknown kernel {kernel!r}; choose one of {KERNELS}"
    if kernel == "torch":
        return True, ""
    if importlib.util.find_spec("triton") is None:
        return False, "kernel=triton needs the 'triton' package (the `kernels` extra)"
    if device_type == "cpu" and not interpreting():
        return False, "kernel=triton on CPU runs only in Triton's interpreter: set TRITON_INTERPRET=1"
    return True, ""
