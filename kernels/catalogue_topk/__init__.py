"""Full-catalogue top-k: the best k items per user state, scored by a dot product against every item.

``catalogue_topk(states, table, k, kernel=...)`` is the one entry point; ``kernel`` picks the implementation.
"""

from __future__ import annotations

import torch

from .. import KERNELS, check_kernel, count_dispatch
from .reference import catalogue_scores, catalogue_topk_reference, check_topk, score_slack

__all__ = [
    "KERNELS",
    "MAX_K",
    "catalogue_scores",
    "catalogue_topk",
    "catalogue_topk_reference",
    "check_topk",
    "score_slack",
]

#: The largest k the Triton kernel keeps per row (its candidate buffers are sized from k).
MAX_K = 256

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def catalogue_topk(
    states: torch.Tensor, table: torch.Tensor, k: int, *, kernel: str = "torch"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top k of states @ table[1:]ᵀ per row: (scores [B, k] in states.dtype, item ids [B, k] int64), best
    first.

    states: [B, d]; table: [N, d] item embeddings whose row 0 is padding (never returned), so ids are in
    1..N-1 and k ≤ min(N − 1, MAX_K). Scores accumulate in fp32 and are rounded once to states.dtype. The
    items are exactly the top k up to ties at the k-th score (the Triton kernel breaks ties towards the lower
    id; torch.topk's order among ties is unspecified). ``kernel`` is one of ``kernels.KERNELS``; any other
    value raises.
    """
    check_kernel("catalogue_topk", kernel)
    if states.dim() != 2 or table.dim() != 2 or states.shape[1] != table.shape[1]:
        raise ValueError(
            f"catalogue_topk | want states [B, d] and table [N, d], but got shapes "
            f"{tuple(states.shape)} and {tuple(table.shape)}"
        )
    if states.dtype not in _FLOAT_DTYPES or table.dtype != states.dtype:
        raise ValueError(
            f"catalogue_topk | states and table must share one of {_FLOAT_DTYPES}, but got "
            f"{states.dtype} and {table.dtype}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(table.shape[0] - 1, MAX_K):
        raise ValueError(
            f"catalogue_topk | k={k!r} must be an int in 1..min(N - 1, {MAX_K}) = "
            f"1..{min(table.shape[0] - 1, MAX_K)} for a table of N={table.shape[0]} rows"
        )
    count_dispatch("catalogue_topk", kernel)  # counted where the branch is taken: what really runs
    if kernel == "torch":
        return catalogue_topk_reference(states, table, k)
    from .._triton import load_triton_module

    impl = load_triton_module("catalogue_topk", f"{__name__}.triton")
    return impl.catalogue_topk_triton(states, table, k)
