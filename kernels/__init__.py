"""Custom kernels of the generative recommender, each with a torch reference and a Triton kernel.

Every op lives in its own package (``kernels/<op>/``) with ``reference.py`` (plain torch, upcasts to fp32,
ONNX-exportable), ``triton.py`` (the fused Triton kernel) and one dispatch function in ``__init__.py`` that
takes ``kernel=`` and raises on an unknown choice. Importing this package never imports triton: the Triton
path imports it on first use, so the harness imports on machines without it.
"""
