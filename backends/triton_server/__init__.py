"""Triton Inference Server backends `triton-grpc` and `triton-http`: a real server, embedded by default.

Importing this package registers the backends and imports nothing heavy: tritonclient is imported when a cell
is prepared, and the server is the `tritonserver` binary of the nvidia-pytriton wheel, started on first use.
"""

from genrec_bench.backends.triton_server import backend  # noqa: F401  (registers triton-grpc, triton-http)
