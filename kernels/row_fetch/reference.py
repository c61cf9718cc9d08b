"""Torch reference of the masked row fetch: what the Triton kernel is checked against, and the CPU path.

It selects the masked entries with nonzero(), a data-dependent shape, which is fine where host and "device"
are the same CPU; on a GPU that would be a host sync per call, which is why CUDA buffers take the Triton path.
"""

from __future__ import annotations

import torch


def fetch_rows_reference(
    dest: torch.Tensor, dest_index: torch.Tensor, table: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
) -> None:
    """dest[dest_index[i]] = table[ids[i]] where mask[i], in place."""
    take = mask.nonzero().squeeze(1)
    rows = table.index_select(0, ids.index_select(0, take).to(table.device))
    dest.index_copy_(0, dest_index.index_select(0, take), rows.to(dest.device))
