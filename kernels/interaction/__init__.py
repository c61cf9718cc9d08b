"""Dot feature interaction (DLRM style): the pairwise dot products of a row's feature embeddings.

``interaction(x, dense=..., kernel=...)`` is the one entry point; ``kernel`` picks the implementation.
"""

from __future__ import annotations

import torch

from .. import check_kernel
from .reference import interaction_reference, tril_flat_index

__all__ = ["interaction", "interaction_reference", "tril_flat_index"]


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def interaction(x: torch.Tensor, *, dense: torch.Tensor | None = None, kernel: str = "torch") -> torch.Tensor:
    """Strictly lower triangle of x·xᵀ per row, optionally after a dense vector.

    x: [B, F, D] fp32/fp16/bf16. Returns [B, F(F−1)/2] in ``torch.tril_indices(F, F, -1)`` order, or
    ``torch.cat([dense, tri], 1)`` of shape [B, E + F(F−1)/2] when ``dense`` [B, E] is given; the dtype is
    x.dtype (dense must have it too). ``kernel`` is one of ``kernels.KERNELS``; any other value raises
    ValueError.
    """
    check_kernel("interaction", kernel)
    if x.dim() != 3:
        raise ValueError(f"interaction | x must be [B, F, D], but got shape {tuple(x.shape)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"interaction | x must be one of {_FLOAT_DTYPES}, but got {x.dtype}")
    if dense is not None and (dense.dim() != 2 or dense.dtype != x.dtype):
        raise ValueError(
            f"interaction | dense must be [B, E] of x's dtype {x.dtype}, "
            f"but got shape {tuple(dense.shape)} and {dense.dtype}"
        )
    if kernel == "torch":
        tri = interaction_reference(x)
        return tri if dense is None else torch.cat([dense, tri], 1)
    from .._triton import load_triton_module

    impl = load_triton_module("interaction", f"{__name__}.triton")
    return impl.interaction_triton(x, dense=dense)
