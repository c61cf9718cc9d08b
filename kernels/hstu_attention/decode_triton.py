"""Triton kernel of one HSTU decode step on the paged KV cache: append the new token, attend over the history.

One program per user (or per slice of its history, SPLITS > 1). It holds the new token's q, k, v [H, dh] in
registers, writes k and v into the cache at position ``length`` (the page table says where), and walks the
history positions < length in blocks of BLOCK_T rows, each row one contiguous H·dh vector looked up through
the page table: scores [BLOCK_T, H] = Σ_d k·q, weights SiLU(score/√dh), acc [BLOCK_T, H, dh] += w·v, summed
over the block's positions once at the end. There is no softmax, so partial sums of several programs simply
add. The new token's own term is added by the first program from registers, so no program reads a row another
one writes in the same launch.

A decode step is one query per user: 4·dh FLOP per cached position and head against 2·H·dh·itemsize bytes
read, so it is bound by HBM bandwidth; the tiles are sized so that each program keeps several 16-byte loads
per thread in flight.

Imported only on the kernel='triton' path (kernels.hstu_attention imports it lazily).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._triton import check_device, interpreting
from .triton import silu

GPU_CONFIGS = [
    triton.Config({"BLOCK_T": t}, num_warps=w, num_stages=s)
    for t, w, s in ((32, 8, 1), (16, 4, 1), (64, 8, 1))
]
INTERPRETER_CONFIGS = [triton.Config({"BLOCK_T": 4}, num_warps=4, num_stages=1)]
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
SWEEP_CONFIGS = [
    triton.Config({"BLOCK_T": t}, num_warps=w, num_stages=1)
    for t, w in ((16, 2), (16, 4), (16, 8), (32, 4), (32, 8), (64, 8), (64, 16), (128, 16))
]


@triton.jit
def _history_block(
    k_pages_ptr,
    v_pages_ptr,
    table,
    t0,
    last,
    ts,
    in_row,
    hd_ok,
    layer_offset,
    row_width,
    page_shift,
    page_mask,
):
    """Cached k and v [BLOCK_T, BLOCK_H, BLOCK_D] of positions t0 + ts (masked at ``last``), and that mask."""
    pos = t0 + ts
    pos_ok = pos < last
    page = tl.load(table + (pos >> page_shift), mask=pos_ok, other=0).to(tl.int64)
    rows = layer_offset + ((page << page_shift) + (pos & page_mask)) * row_width
    at = rows[:, None, None] + in_row[None, :, :]
    mask = pos_ok[:, None, None] & hd_ok[None, :, :]
    return (
        tl.load(k_pages_ptr + at, mask=mask, other=0.0),
        tl.load(v_pages_ptr + at, mask=mask, other=0.0),
        pos_ok,
    )


# Only sizes that set the memory layout are compile-time (HEAD_DIM) or specialised (strides, layer_offset:
# their divisibility by 16 keeps the row loads 16 bytes wide); heads and the page size vary per call without a
# new compile (rows are heads·HEAD_DIM wide, a multiple of HEAD_DIM, which is what alignment needs).
@triton.jit(do_not_specialize=["heads", "page_shift", "splits_span"])
def hstu_decode_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    out_ptr,
    k_pages_ptr,
    v_pages_ptr,
    page_table_ptr,
    lengths_ptr,
    stride_qb,
    stride_qh,
    stride_kb,
    stride_kh,
    stride_vb,
    stride_vh,
    stride_ob,
    stride_oh,
    stride_table,
    layer_offset,
    heads,
    page_shift,
    scale,
    splits_span,
    HEAD_DIM: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SPLITS: tl.constexpr,
    FAST_SILU: tl.constexpr,
):
    """out[b] = (Σ_{j < len} SiLU(q·k_j·scale) v_j + SiLU(q·k·scale) v) / (len + 1); cache[len] = k, v."""
    b = tl.program_id(0)
    split = tl.program_id(1)
    length = tl.load(lengths_ptr + b).to(tl.int32)
    hs = tl.arange(0, BLOCK_H)
    ds = tl.arange(0, BLOCK_D)
    hd_ok = (hs < heads)[:, None] & ((ds < HEAD_DIM) | (HEAD_DIM == BLOCK_D))[None, :]  # no mask along d
    q = tl.load(q_ptr + b * stride_qb + hs[:, None] * stride_qh + ds[None, :], mask=hd_ok, other=0.0)
    q = q.to(tl.float32)
    row_width = heads * HEAD_DIM  # one cached position: H·dh contiguous values
    in_row = hs[:, None] * HEAD_DIM + ds[None, :]
    page_mask = (1 << page_shift) - 1
    table = page_table_ptr + b.to(tl.int64) * stride_table
    acc = tl.zeros((BLOCK_H, BLOCK_D), dtype=tl.float32)
    if split == 0:
        k_new = tl.load(k_ptr + b * stride_kb + hs[:, None] * stride_kh + ds[None, :], mask=hd_ok, other=0.0)
        v_new = tl.load(v_ptr + b * stride_vb + hs[:, None] * stride_vh + ds[None, :], mask=hd_ok, other=0.0)
        page = tl.load(table + (length >> page_shift)).to(tl.int64)
        at = layer_offset + ((page << page_shift) + (length & page_mask)) * row_width + in_row
        tl.store(k_pages_ptr + at, k_new, mask=hd_ok)
        tl.store(v_pages_ptr + at, v_new, mask=hd_ok)
        s_new = tl.sum(q * k_new.to(tl.float32), axis=1) * scale
        acc += silu(s_new, FAST_SILU)[:, None] * v_new.to(tl.float32)
    first = split * splits_span
    last = tl.minimum(first + splits_span, length)
    ts = tl.arange(0, BLOCK_T)
    # Loads of the next block are issued before the current one is used (nothing else would overlap them:
    # these are not dot operands, which Triton pipelines), and Σ_t w·v accumulates per position, reduced over
    # positions once at the end rather than across warps every block.
    acc_t = tl.zeros((BLOCK_T, BLOCK_H, BLOCK_D), dtype=tl.float32)
    k_cur, v_cur, ok_cur = _history_block(
        k_pages_ptr,
        v_pages_ptr,
        table,
        first,
        last,
        ts,
        in_row,
        hd_ok,
        layer_offset,
        row_width,
        page_shift,
        page_mask,
    )
    for t0 in range(first, last, BLOCK_T):
        k_next, v_next, ok_next = _history_block(
            k_pages_ptr,
            v_pages_ptr,
            table,
            t0 + BLOCK_T,
            last,
            ts,
            in_row,
            hd_ok,
            layer_offset,
            row_width,
            page_shift,
            page_mask,
        )
        scores = tl.sum(k_cur.to(tl.float32) * q[None, :, :], axis=2) * scale  # [BLOCK_T, BLOCK_H]
        w = tl.where(ok_cur[:, None], silu(scores, FAST_SILU), 0.0)
        acc_t += w[:, :, None] * v_cur.to(tl.float32)
        k_cur, v_cur, ok_cur = k_next, v_next, ok_next
    acc += tl.sum(acc_t, axis=0)
    out = acc / (length + 1).to(tl.float32)
    out_at = out_ptr + b * stride_ob + hs[:, None] * stride_oh + ds[None, :]
    if SPLITS == 1:
        tl.store(out_at, out.to(out_ptr.dtype.element_ty), mask=hd_ok)
    else:  # fp32 partial sums of the history slices, added into a zeroed buffer
        tl.atomic_add(out_at, out, mask=hd_ok)


hstu_decode_autotuned = triton.autotune(
    configs=CONFIGS, key=["HEAD_DIM", "BLOCK_H", "SPLITS", "FAST_SILU"], reset_to_zero=["out_ptr"]
)(hstu_decode_kernel)


def hstu_decode_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache,
    v_cache,
    lengths: torch.Tensor,
    *,
    layer: int,
    splits: int = 1,
    config: dict | None = None,
) -> torch.Tensor:
    """Triton implementation of ``kernels.hstu_attention.hstu_decode_attention`` (same contract).

    ``splits`` > 1 cuts each user's history into that many slices, one program each, whose fp32 partial sums
    are added atomically (more programs for small batches; one extra memset and cast). ``config`` (e.g.
    {"BLOCK_T": 32, "num_warps": 4, "num_stages": 2}) bypasses the autotuner.
    """
    check_device("hstu_decode_attention", q, k, v, k_cache.pages, v_cache.pages, lengths)
    batch, heads, head_dim = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if batch == 0:
        return out
    if k_cache.pages.stride(4) != 1 or not k_cache.pages.is_contiguous() or not v_cache.pages.is_contiguous():
        raise ValueError("hstu_decode_attention | the cache pages must be contiguous")
    q, k, v = (t if t.stride(2) == 1 else t.contiguous() for t in (q, k, v))
    table = k_cache.page_table
    capacity = table.shape[1] * k_cache.page_size  # the most positions any user can hold
    span = triton.cdiv(capacity, splits)
    target = out if splits == 1 else torch.zeros(q.shape, dtype=torch.float32, device=q.device)
    args = (
        q,
        k,
        v,
        target,
        k_cache.pages,
        v_cache.pages,
        table,
        lengths,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        target.stride(0),
        target.stride(1),
        table.stride(0),
        layer * k_cache.pages.stride(0),
        heads,
        k_cache.page_size.bit_length() - 1,
        1.0 / math.sqrt(head_dim),
        span,
    )
    params = {
        # BLOCK_H of at least 8 (base's head count): fewer compiles; masked heads cost nothing to memory.
        "HEAD_DIM": head_dim,
        "BLOCK_H": max(8, triton.next_power_of_2(heads)),
        "BLOCK_D": triton.next_power_of_2(head_dim),
        "SPLITS": splits,
        "FAST_SILU": q.dtype != torch.float32 and not interpreting(),
    }
    grid = (batch, splits)
    if config is None:
        hstu_decode_autotuned[grid](*args, **params)
    else:
        hstu_decode_kernel[grid](*args, **params, **config)
    return out if splits == 1 else out.copy_(target)
