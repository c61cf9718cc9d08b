"""Jagged embedding-bag pooling: gather item embeddings of variable-length histories and sum/mean them.

``jagged_pooling(values, offsets, table, mode=..., kernel=...)`` is the one entry point.
"""

from __future__ import annotations

import torch

from .. import check_kernel
from .reference import jagged_pooling_reference, segment_ids

__all__ = ["MODES", "jagged_pooling", "jagged_pooling_reference", "segment_ids"]

#: The pooling modes.
MODES = ("sum", "mean")


def jagged_pooling(
    values: torch.Tensor,
    offsets: torch.Tensor,
    table: torch.Tensor,
    *,
    mode: str = "sum",
    kernel: str = "torch",
) -> torch.Tensor:
    """Pool ``table`` rows over jagged rows: values int64 [N] ids, offsets int64 [B+1], table [V, D] → [B, D].

    offsets[0] = 0, offsets[-1] = N and offsets is non-decreasing; row b holds
    values[offsets[b]:offsets[b+1]]. ``mode`` is "sum" or "mean" (the mean of an empty row is 0). Accumulates
    in fp32 and returns table.dtype. Ids are not range-checked by the Triton kernel (that would cost a device
    sync): keep them in [0, V). ``kernel`` is one of ``kernels.KERNELS``; any other value raises ValueError.
    """
    check_kernel("jagged_pooling", kernel)
    if mode not in MODES:
        raise ValueError(f"jagged_pooling | unknown mode={mode!r}; choose one of {MODES}")
    if values.dim() != 1 or offsets.dim() != 1 or table.dim() != 2:
        raise ValueError(
            f"jagged_pooling | want values [N], offsets [B+1], table [V, D], but got shapes "
            f"{tuple(values.shape)}, {tuple(offsets.shape)}, {tuple(table.shape)}"
        )
    if values.dtype != torch.int64 or offsets.dtype != torch.int64:
        raise ValueError(
            f"jagged_pooling | values and offsets must be int64, but got {values.dtype} and {offsets.dtype}"
        )
    if kernel == "torch":
        return jagged_pooling_reference(values, offsets, table, mode=mode)
    from .._triton import load_triton_module

    impl = load_triton_module("jagged_pooling", f"{__name__}.triton")
    return impl.jagged_pooling_triton(values, offsets, table, mode=mode)
