"""Backends: Backend.prepare(model, cell, context) → Session; Session.runner(inputs) → the closure that is
timed.

Importing this package registers the built-in backends; optional frameworks are imported only inside the
backend that needs them, so the harness imports on a bare machine and reports why a backend is unavailable.
"""

from genrec_bench.backends import (  # noqa: F401  (each module registers its backends when imported)
    ort_backend,  # ort-cpu, ort-cuda, ort-trt; onnxruntime imported lazily
    torch_backend,  # torch-cpu, torch-cuda
    triton_server,  # triton-grpc, triton-http; tritonclient imported lazily
)
from genrec_bench.backends.base import Backend, Session
from genrec_bench.backends.registry import (
    backend_modes,
    backend_names,
    get_backend,
    load_entry_points,
    register_backend,
    unregister_backend,
)

__all__ = [
    "Backend",
    "Session",
    "backend_modes",
    "backend_names",
    "get_backend",
    "load_entry_points",
    "register_backend",
    "unregister_backend",
]
