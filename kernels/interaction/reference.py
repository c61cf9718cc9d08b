"""Torch reference of the DLRM-style dot interaction: the ground truth the Triton kernel is fuzzed against.

Upcasts to fp32 so the reference is as exact as the comparison needs, and uses only bmm and an index gather
so ``torch.onnx.export(..., dynamo=True)`` and ``torch.compile`` take it as it is.
"""

from __future__ import annotations

import torch

from .. import count_dispatch


def tril_flat_index(features: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Flat indices (i * F + j) of the strictly lower triangle of an F×F matrix, in tril_indices order."""
    rows, cols = torch.tril_indices(features, features, offset=-1, device=device)
    return rows * features + cols


def interaction_reference(x: torch.Tensor) -> torch.Tensor:
    """Strictly lower triangle of x·xᵀ per batch row: [B, F, D] → [B, F(F−1)/2], computed in fp32."""
    count_dispatch("interaction", "torch")
    _, features, _ = x.shape
    xf = x.float()
    gram = torch.bmm(xf, xf.transpose(1, 2))  # [B, F, F]
    # F is a static shape, so the index is a constant of the traced graph: a plain Gather in ONNX.
    index = tril_flat_index(features, device=x.device)
    return gram.flatten(1).index_select(1, index).to(x.dtype)
