"""Pass 1 of the catalogue top-k: the tensor-core scan over the table (see triton.py for the algorithm and why
it is exact)."""

from __future__ import annotations

import triton
import triton.language as tl

from .keys import MIN_KEY, key_scores, pack_keys


@triton.jit
def _tile_scores(
    a,
    states_ptr,
    table_ptr,
    rows,
    row_ok,
    cols,
    col_ok,
    dim,
    stride_s,
    stride_t,
    RESIDENT: tl.constexpr,
    D_PAD: tl.constexpr,
    FULL_D: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """fp32 scores [BLOCK_M, BLOCK_N] of the rows against the items ``cols`` (padding lanes score 0)."""
    table_rows = table_ptr + cols.to(tl.int64)[:, None] * stride_t
    if RESIDENT:
        # The whole width in one dot: the states operand ``a`` was loaded once, before the loop over tiles.
        ks = tl.arange(0, D_PAD)
        b = tl.load(
            table_rows + ks[None, :], mask=col_ok[:, None] & ((ks < dim) | FULL_D)[None, :], other=0.0
        )
        if UPCAST:  # the interpreter's 16-bit dot is not exact; fp32 products of 16-bit inputs are
            b = b.to(tl.float32)
        acc = tl.dot(a, tl.trans(b), input_precision=PRECISION)
    else:
        # Too wide to keep the states' block on chip: both operands stream along d (the states from L2).
        ks = tl.arange(0, BLOCK_K)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, dim, BLOCK_K):
            kk = k0 + ks
            k_ok = (kk < dim) | EVEN_K
            a_k = tl.load(
                states_ptr + rows[:, None] * stride_s + kk[None, :],
                mask=row_ok[:, None] & k_ok[None, :],
                other=0.0,
            )
            b_k = tl.load(table_rows + kk[None, :], mask=col_ok[:, None] & k_ok[None, :], other=0.0)
            if UPCAST:
                a_k = a_k.to(tl.float32)
                b_k = b_k.to(tl.float32)
            acc = tl.dot(a_k, tl.trans(b_k), acc, input_precision=PRECISION)
    return acc


# Sizes that vary per call are not specialised on (each value class would be another compile); the strides
# are, and FULL_D/EVEN_K drop the mask along d, which is what lets the operand loads be 16 bytes wide.
@triton.jit(do_not_specialize=["batch", "items", "dim", "chunks", "span", "batch_bucket"])
def catalogue_scan_kernel(
    states_ptr,
    table_ptr,
    chunk_key_ptr,
    chunk_sec_ptr,
    group_top_ptr,
    group_next_ptr,
    group_opt_ptr,
    batch,
    items,
    dim,
    chunks,
    span,
    stride_s,
    stride_t,
    batch_bucket,  # only an autotune key
    G: tl.constexpr,
    R: tl.constexpr,
    D_PAD: tl.constexpr,
    FULL_D: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    RESIDENT: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Per row: each chunk's best key and second-best score, each group's best R chunk keys, the (R+1)-th, and
    the bound on its chunks' second-best keys; see the module doc. G is a multiple of BLOCK_N, R ≤ 4."""
    TILES: tl.constexpr = G // BLOCK_N  # tiles per chunk
    block = tl.program_id(0)
    group = tl.program_id(1)
    groups = tl.num_programs(1)
    rows = block * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < batch
    lane = tl.arange(0, BLOCK_N)
    first_chunk = group * span
    end_chunk = tl.minimum(first_chunk + span, chunks)
    end_tile = tl.minimum(end_chunk * TILES, tl.cdiv(items - 1, BLOCK_N))  # the last chunk may be short
    a = tl.zeros((BLOCK_M, D_PAD), dtype=tl.float32)  # unused unless RESIDENT
    if RESIDENT:
        ks = tl.arange(0, D_PAD)
        a = tl.load(
            states_ptr + rows[:, None] * stride_s + ks[None, :],
            mask=row_ok[:, None] & ((ks < dim) | FULL_D)[None, :],
            other=0.0,
        )
        if UPCAST:
            a = a.to(tl.float32)
    chunk_key = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    chunk_sec = tl.full((BLOCK_M,), -float("inf"), tl.float32)
    # The group's best R chunk keys, descending, then the best key pushed out of them, and the highest bound
    # (second-best score, chunk's first id) over its chunks. Scalars per row, not an [R] axis: inserting into
    # four registers is a compare-exchange chain, with no layout to convert.
    top0 = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    top1 = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    top2 = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    top3 = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    pushed = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    opt = tl.full((BLOCK_M,), MIN_KEY, tl.int64)
    for tile in range(first_chunk * TILES, end_tile):
        cols = 1 + tile * BLOCK_N + lane  # item ids; row 0 of the table is padding
        col_ok = cols < items
        s = _tile_scores(
            a,
            states_ptr,
            table_ptr,
            rows,
            row_ok,
            cols,
            col_ok,
            dim,
            stride_s,
            stride_t,
            RESIDENT,
            D_PAD,
            FULL_D,
            BLOCK_K,
            EVEN_K,
            UPCAST,
            PRECISION,
            BLOCK_M,
            BLOCK_N,
        )
        s = tl.where(col_ok[None, :], s, -float("inf"))
        # Best (the lowest lane among equal scores: the lower id) and the best of the rest.
        best, at = tl.max(s, axis=1, return_indices=True, return_indices_tie_break_left=True)
        second = tl.max(tl.where(lane[None, :] == at[:, None], -float("inf"), s), axis=1)
        key = pack_keys(best, 1 + tile * BLOCK_N + at)
        if TILES == 1:
            chunk_key = key
            chunk_sec = second
        else:  # fold the tile into its chunk: the loser's best is a candidate for the chunk's second
            starts = tile % TILES == 0
            folded = tl.maximum(tl.maximum(chunk_sec, second), key_scores(tl.minimum(chunk_key, key)))
            chunk_key = tl.where(starts, key, tl.maximum(chunk_key, key))
            chunk_sec = tl.where(starts, second, folded)
        if (tile % TILES == TILES - 1) | (tile == end_tile - 1):
            chunk = tile // TILES
            at_chunk = chunk.to(tl.int64) * batch + rows  # chunk-major: one program's stores are contiguous
            tl.store(chunk_key_ptr + at_chunk, chunk_key, mask=row_ok)
            tl.store(chunk_sec_ptr + at_chunk, chunk_sec, mask=row_ok)
            bound = tl.where(chunk_sec > -float("inf"), pack_keys(chunk_sec, 1 + chunk * G), MIN_KEY)
            opt = tl.maximum(opt, bound)
            x = chunk_key
            hi = tl.maximum(top0, x)
            x = tl.minimum(top0, x)
            top0 = hi
            if R > 1:
                hi = tl.maximum(top1, x)
                x = tl.minimum(top1, x)
                top1 = hi
            if R > 2:
                hi = tl.maximum(top2, x)
                x = tl.minimum(top2, x)
                top2 = hi
            if R > 3:
                hi = tl.maximum(top3, x)
                x = tl.minimum(top3, x)
                top3 = hi
            pushed = tl.maximum(pushed, x)
    at_group = rows.to(tl.int64) * groups + group
    tl.store(group_top_ptr + at_group * R, top0, mask=row_ok)
    if R > 1:
        tl.store(group_top_ptr + at_group * R + 1, top1, mask=row_ok)
    if R > 2:
        tl.store(group_top_ptr + at_group * R + 2, top2, mask=row_ok)
    if R > 3:
        tl.store(group_top_ptr + at_group * R + 3, top3, mask=row_ok)
    tl.store(group_next_ptr + at_group, pushed, mask=row_ok)
    tl.store(group_opt_ptr + at_group, opt, mask=row_ok)
