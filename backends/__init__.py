"""Backends: Backend.prepare(model, cell) → Session; Session.runner(inputs) → the closure that is timed.

Importing this package registers the built-in backends; optional frameworks are imported only inside the backend
that needs them, so the harness imports on a bare machine and reports why a backend is unavailable.
"""
from backends import (
                               ort_backend,  # noqa: F401  (registers ort-cpu, ort-cuda, ort-trt; onnxruntime imported lazily)
                               torch_backend,  # noqa: F401  (registers torch-cpu, torch-cuda)
                               triton,  # noqa: F401  (registers triton-grpc, triton-http; tritonclient imported lazily)
)
from backends.base import Backend, Session
from backends.registry import (
                               backend_modes,
                               backend_names,
                               get_backend,
                               load_entry_points,
                               register_backend,
                               unregister_backend,
)

__all__ = ["Backend", "Session", "backend_modes", "backend_names", "get_backend", "load_entry_points",
           "register_backend", "unregister_backend"]
