"""Triton kernel of the masked row fetch: each program copies BLOCK_N rows, BLOCK_D columns at a time.

The table may be a pinned CPU tensor: the loads then go over PCIe straight from host memory (zero-copy), and
masked-off rows issue no load at all, so the bytes crossing the bus are the masked rows' only. A row of the
large preset is 256 B in fp16, so each masked row is a few full 128-byte bus requests. Imported only on the
kernel='triton' path (kernels.row_fetch imports it lazily).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from .._triton import check_device, interpreting

BLOCK_N = 16


@triton.jit
def fetch_rows_kernel(
    dest_ptr,
    dest_index_ptr,
    table_ptr,
    ids_ptr,
    mask_ptr,
    n,
    d,
    dest_stride,
    table_stride,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """dest[dest_index[i], :] = table[ids[i], :] for the masked i of this program's BLOCK_N."""
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    take = tl.load(mask_ptr + rows, mask=rows < n, other=0) != 0
    src = tl.load(ids_ptr + rows, mask=take, other=0).to(tl.int64)
    dst = tl.load(dest_index_ptr + rows, mask=take, other=0).to(tl.int64)
    for d0 in range(0, d, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D)
        ok = take[:, None] & (cols[None, :] < d)
        vals = tl.load(table_ptr + src[:, None] * table_stride + cols[None, :], mask=ok)
        tl.store(dest_ptr + dst[:, None] * dest_stride + cols[None, :], vals, mask=ok)


def fetch_rows_triton(
    dest: torch.Tensor, dest_index: torch.Tensor, table: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor
) -> None:
    """Launch on dest's device; `table` may live in pinned host memory (read in place)."""
    check_device("fetch_rows", dest, dest_index, ids, mask)
    if table.device.type == "cpu" and dest.device.type == "cuda" and not table.is_pinned():
        raise ValueError(
            "fetch_rows | a CPU table must be pinned (torch.empty(..., pin_memory=True)) for the "
            "GPU to read it in place; pageable memory is not mapped into the device's address space"
        )
    if dest.stride(1) != 1 or table.stride(1) != 1:
        raise ValueError("fetch_rows | dest and table rows must be contiguous (stride 1 along D)")
    n, d = ids.shape[0], table.shape[1]
    if n == 0:
        return
    block_d = min(triton.next_power_of_2(d), 128)
    # A bool tensor is handed over as bytes: Triton's bool pointers are not uniform across versions.
    flags = mask.view(torch.uint8)
    # Launch on the buffer's device: Triton launches on the current one, and refuses another device's pointer.
    on_device = contextlib.nullcontext() if interpreting() else torch.cuda.device(dest.device)
    with on_device:
        fetch_rows_kernel[(triton.cdiv(n, BLOCK_N),)](
            dest,
            dest_index,
            table,
            ids,
            flags,
            n,
            d,
            dest.stride(0),
            table.stride(0),
            BLOCK_N=BLOCK_N,
            BLOCK_D=block_d,
        )
