"""Torch reference of jagged embedding-bag pooling: the ground truth the Triton kernel is fuzzed against.

Segment ids come from the offsets with a scatter-add and a cumsum (no repeat_interleave, no searchsorted, no
Python loop over rows), so the graph has static control flow: ``torch.onnx.export(..., dynamo=True)`` turns it
into ScatterElements + CumSum + Gather, and ``torch.compile`` takes it without graph breaks.
"""

from __future__ import annotations

import torch

from .. import count_dispatch


def segment_ids(offsets: torch.Tensor, total: int) -> torch.Tensor:
    """Row index of every value of a jagged batch: offsets [B+1] → [N] (N = offsets[-1] = ``total``)."""
    rows = offsets.numel() - 1
    # A 1 at each row end (offsets[1:]); their running count at position n is the row n belongs to.
    # Empty rows put several 1s at one position, which the add keeps; the slot at N catches the last end.
    marks = torch.zeros(total + 1, dtype=torch.int64, device=offsets.device)
    marks = marks.scatter_add(0, offsets[1:], torch.ones(rows, dtype=torch.int64, device=offsets.device))
    return torch.cumsum(marks, 0)[:total]


def jagged_pooling_reference(
    values: torch.Tensor, offsets: torch.Tensor, table: torch.Tensor, *, mode: str = "sum"
) -> torch.Tensor:
    """Sum (or mean) of ``table[values]`` over each jagged row, in fp32, cast back to
    table.dtype: → [B, D]."""
    count_dispatch("jagged_pooling", "torch")
    rows = offsets.numel() - 1
    dim = table.shape[1]
    seg = segment_ids(offsets, values.shape[0])
    gathered = table.index_select(0, values).float()  # [N, D]
    pooled = torch.zeros(rows, dim, dtype=torch.float32, device=table.device)
    pooled = pooled.scatter_add(0, seg.unsqueeze(1).expand(-1, dim), gathered)
    if mode == "mean":
        lengths = (offsets[1:] - offsets[:-1]).clamp(min=1)  # an empty row's mean is 0, not NaN
        pooled = pooled / lengths.unsqueeze(1).to(torch.float32)
    return pooled.to(table.dtype)
