"""Masked row fetch: copy chosen rows of a (host-resident) table into chosen rows of a device buffer.

``fetch_rows(dest, dest_index, table, ids, mask, kernel=...)`` is the one entry point: for every i with
mask[i], dest[dest_index[i]] = table[ids[i]]; other rows of dest are left as they are. It is how the embedding
placements (models/embedding) read the item table in host memory: the Triton kernel is handed the pinned host
tensor itself and reads it in place over PCIe (zero-copy: pinned memory is mapped into the GPU's unified
address space, and Triton's launcher turns its pointer into the device-side one), only the rows the mask asks
for, with static shapes and no host synchronisation, so it can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch

from .. import KERNELS, check_kernel
from .reference import fetch_rows_reference

__all__ = ["KERNELS", "fetch_rows", "fetch_rows_reference", "default_kernel"]


def default_kernel(dest: torch.Tensor) -> str:
    """Triton where the buffer is on a GPU (the zero-copy read), torch where everything is on the CPU."""
    return "triton" if dest.device.type == "cuda" else "torch"


def fetch_rows(
    dest: torch.Tensor,
    dest_index: torch.Tensor,
    table: torch.Tensor,
    ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    kernel: str | None = None,
) -> None:
    """dest[dest_index[i]] = table[ids[i]] where mask[i], in place.

    dest [R, D] and table [V, D] of one dtype; dest_index, ids int64 [N]; mask bool [N]. Indices are not
    range-checked (that would cost a device sync): keep ids in [0, V) and dest_index in [0, R), and no two
    masked entries on one dest row. ``kernel`` is one of ``KERNELS`` or None for ``default_kernel(dest)``.
    """
    kernel = default_kernel(dest) if kernel is None else kernel
    # Not counted in kernels.DISPATCHED: how a placement reads host rows is its own choice (Triton on a GPU),
    # not the cell's kernel= label, which the provenance check compares the model's ops with.
    check_kernel("fetch_rows", kernel)
    if dest.dim() != 2 or table.dim() != 2 or dest.shape[1] != table.shape[1] or dest.dtype != table.dtype:
        raise ValueError(
            f"fetch_rows | want dest [R, D] and table [V, D] of one dtype, but got "
            f"{tuple(dest.shape)} {dest.dtype} and {tuple(table.shape)} {table.dtype}"
        )
    if not (dest_index.shape == ids.shape == mask.shape and ids.dim() == 1):
        raise ValueError(
            f"fetch_rows | dest_index, ids and mask must be [N] alike, but got "
            f"{tuple(dest_index.shape)}, {tuple(ids.shape)}, {tuple(mask.shape)}"
        )
    if kernel == "torch":
        fetch_rows_reference(dest, dest_index, table, ids, mask)
        return
    from .._triton import load_triton_module

    impl = load_triton_module("fetch_rows", f"{__name__}.triton")
    impl.fetch_rows_triton(dest, dest_index, table, ids, mask)
