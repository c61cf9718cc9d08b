"""Triton kernels of the full-catalogue top-k: one pass over the table, then a small exact per-row finish.

Items are ranked by int64 keys: the fp32 score's bits made order-preserving in the high word, 2^31 − 1 − item
in the low word. One integer order then ranks by score and breaks ties towards the lower item id, and every
item has a distinct key, so "the top k" is one well-defined set.

The catalogue (items 1..N−1; row 0 is padding) is cut into *chunks* of G consecutive items, and the chunks
into *groups* of ``span`` consecutive chunks (about one group per SM).

1. ``catalogue_scan_kernel``, program (row block, group): the group's tiles of S = states·tableᵀ on the tensor
   cores (fp32 accumulation). The states' block is loaded into shared memory once for the whole group, so the
   table is the only operand streamed (each table tile is read from HBM once; other row blocks read it from
   L2 at the same time, as the grid puts the row blocks of a group next to each other). Rows wider than
   ROW_BYTES stream both operands along d instead. The scores are never written. Per row and chunk it keeps
   the best key and the second-best score (``chunk_key``, ``chunk_sec``); per row and group, the best R chunk
   keys (``group_top``), the next best one (``group_next``, the (R+1)-th) and the highest "second-best" of its
   chunks (``group_opt``, as a key: see below).
2. ``catalogue_finish_kernel``, one program per row: best = the top k of the row's groups' kept chunk keys
   (one sort), then two rare repairs, then the answer.

Why that is exact. Let A be the true top k of the row, κ the k-th key of ``best`` at any moment; ``best``
holds k distinct real items, so κ ≤ min(A) always, and it only rises as items are added.

* An item x ∈ A that is some chunk's best key but not kept by its group g: the R keys g kept are above x, so
  also in A, and g's (R+1)-th key is ≥ x ≥ κ. So every group with ``group_next`` ≥ κ has the rest of its
  chunk keys (those below its R-th: the R were candidates from the start) read, and no other group can hide
  one.
* An item x ∈ A that is not its chunk's best: the chunk's second-best item y has key ≥ x ≥ κ, and its key is
  at most (second-best score, the chunk's first id) — what ``chunk_sec`` gives without knowing y's id. So
  only chunks where that bound is ≥ κ can hide one; they are rescored item by item (all but the chunk's best,
  which is already counted). ``group_opt`` is the same bound's maximum over a group, so the finish looks only
  into groups that can hold such a chunk.

The answer is then the top k of a set that contains A. Nothing is ever truncated: many ties only mean more
chunks rescored (ties are broken by id, and the bounds know the ids' order), never a buffer overflow. With
random embeddings both repairs touch under one group or chunk per row on average at N = 1M, k = 100.

Rescored items go through the scan's own tile code (the same tensor-core dot, the same steps along d), so they
score exactly as the scan scored them: identical table rows tie exactly and go to the lower id, whichever path
found them. Cost at B = 256, N = 1M, d = 256: the table read once from HBM (the scan writes 12 B per row and
chunk, ~25 MB), and the finish's one 512-key sort per row; no [B, N] scores, no torch.topk.

Imported only on the kernel='triton' path (kernels.catalogue_topk imports it lazily).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .._triton import check_device, interpreting
from .bitonic import sort_descending

# Globals a kernel reads must be constexpr.
_MIN_KEY = tl.constexpr(-(2**63))  # below every real key: "nothing"
_MAX_KEY = tl.constexpr(2**63 - 1)  # above every real key


@triton.jit
def _pack(scores, items):
    """Order-preserving int64 keys of fp32 scores and int32 item ids (same shapes)."""
    bits = scores.to(tl.int32, bitcast=True)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats: flip the magnitude bits
    low = (2147483647 - items).to(tl.int64)  # 2^31 − 1 − item: lower ids rank first
    return (ordered.to(tl.int64) << 32) | low


@triton.jit
def _score(keys):
    """fp32 score of int64 keys (the inverse of the high word of ``_pack``)."""
    high = (keys >> 32).to(tl.int32)
    return (high ^ ((high >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)


@triton.jit
def _item(keys):
    return 2147483647 - (keys & 0x7FFFFFFF).to(tl.int32)


# ------------------------------------------------------------------------------------------- pass 1: the scan


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
    chunk_key = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    chunk_sec = tl.full((BLOCK_M,), -float("inf"), tl.float32)
    # The group's best R chunk keys, descending, then the best key pushed out of them, and the highest bound
    # (second-best score, chunk's first id) over its chunks. Scalars per row, not an [R] axis: inserting into
    # four registers is a compare-exchange chain, with no layout to convert.
    top0 = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    top1 = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    top2 = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    top3 = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    pushed = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
    opt = tl.full((BLOCK_M,), _MIN_KEY, tl.int64)
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
        key = _pack(best, 1 + tile * BLOCK_N + at)
        if TILES == 1:
            chunk_key = key
            chunk_sec = second
        else:  # fold the tile into its chunk: the loser's best is a candidate for the chunk's second
            starts = tile % TILES == 0
            folded = tl.maximum(tl.maximum(chunk_sec, second), _score(tl.minimum(chunk_key, key)))
            chunk_key = tl.where(starts, key, tl.maximum(chunk_key, key))
            chunk_sec = tl.where(starts, second, folded)
        if (tile % TILES == TILES - 1) | (tile == end_tile - 1):
            chunk = tile // TILES
            at_chunk = chunk.to(tl.int64) * batch + rows  # chunk-major: one program's stores are contiguous
            tl.store(chunk_key_ptr + at_chunk, chunk_key, mask=row_ok)
            tl.store(chunk_sec_ptr + at_chunk, chunk_sec, mask=row_ok)
            bound = tl.where(chunk_sec > -float("inf"), _pack(chunk_sec, 1 + chunk * G), _MIN_KEY)
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


# ----------------------------------------------------------------------------------------- pass 2: the finish


@triton.jit
def _sort(x, W: tl.constexpr, LOG_W: tl.constexpr, INTERPRET: tl.constexpr):
    """x [W] sorted descending. tl.sort on the GPU; in the interpreter the network of bitonic.py, the same
    function: the interpreter runs tl.sort's xor-reductions element by element in Python."""
    rows = tl.reshape(x, (1, W))
    if INTERPRET:
        rows = sort_descending(rows, 1, W, LOG_W)
    else:
        rows = tl.sort(rows, dim=1, descending=True)
    return tl.reshape(rows, (W,))


@triton.jit
def _insert(best, kth, new, lanes, k, changed):
    """Every key of ``new`` above ``kth`` into ``best``, whose first k lanes hold the current top k in no
    order (each replaces the lowest there); returns (best, kth, changed). Keys come in descending order, so a
    key no longer above the risen kth ends the useful part (the loop runs to the count taken at entry, so no
    break)."""
    for _ in range(tl.sum((new > kth).to(tl.int32), axis=0)):
        x = tl.max(new, axis=0)
        new = tl.where(new == x, _MIN_KEY, new)
        take = x > kth
        slot = tl.argmin(tl.where(lanes < k, best, _MAX_KEY), axis=0)
        best = tl.where((lanes == slot) & take, x, best)
        kth = tl.min(tl.where(lanes < k, best, _MAX_KEY), axis=0)
        changed += take.to(tl.int32)
    return best, kth, changed


@triton.jit
def _rescore_chunk(
    best,
    kth,
    lanes,
    k,
    changed,
    states_ptr,
    table_ptr,
    row,
    chunk,
    own,
    items,
    dim,
    stride_s,
    stride_t,
    G: tl.constexpr,
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
    """Every item of a chunk but ``own`` (already counted) scored for one row and inserted into ``best``.

    Scored by the scan's own tile code: the same dot, the same steps along d, so an item scores exactly as the
    scan scored it and identical rows tie exactly (ties then go to the lower id, as everywhere else). The
    dot wants BLOCK_M ≥ 16 rows: all of them are this row, so every row of the result is the same.
    """
    rows = tl.full((BLOCK_M,), 0, tl.int64) + row
    a = tl.zeros((BLOCK_M, D_PAD), dtype=tl.float32)  # unused unless RESIDENT
    if RESIDENT:
        ks = tl.arange(0, D_PAD)
        a = tl.load(
            states_ptr + rows[:, None] * stride_s + ks[None, :],
            mask=((ks < dim) | FULL_D)[None, :],
            other=0.0,
        )
        if UPCAST:
            a = a.to(tl.float32)
    for tile in range(0, G // BLOCK_N):
        cols = 1 + chunk * G + tile * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = cols < items
        s = _tile_scores(
            a,
            states_ptr,
            table_ptr,
            rows,
            rows >= 0,
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
        new = tl.where(col_ok & (cols != own), _pack(tl.max(s, axis=0), cols), _MIN_KEY)
        best, kth, changed = _insert(best, kth, new, lanes, k, changed)
    return best, kth, changed


@triton.jit(do_not_specialize=["batch", "items", "dim", "chunks", "groups", "span", "k"])
def catalogue_finish_kernel(
    states_ptr,
    table_ptr,
    chunk_key_ptr,
    chunk_sec_ptr,
    group_top_ptr,
    group_next_ptr,
    group_opt_ptr,
    scores_ptr,
    items_ptr,
    batch,
    items,
    dim,
    chunks,
    groups,
    span,
    k,
    stride_s,
    stride_t,
    stride_out,
    G: tl.constexpr,
    R: tl.constexpr,
    W: tl.constexpr,
    LOG_W: tl.constexpr,
    GROUPS_PAD: tl.constexpr,
    PIECE: tl.constexpr,
    D_PAD: tl.constexpr,
    FULL_D: tl.constexpr,
    BLOCK_K: tl.constexpr,
    EVEN_K: tl.constexpr,
    RESIDENT: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    INTERPRET: tl.constexpr,
):
    """Top k of one row, best first, ties to the lower id, from the scan's summaries; see the module doc."""
    row = tl.program_id(0).to(tl.int64)
    lanes = tl.arange(0, W)
    best = tl.load(group_top_ptr + row * groups * R + lanes, mask=lanes < groups * R, other=_MIN_KEY)
    best = _sort(best, W, LOG_W, INTERPRET)
    kth = tl.min(tl.where(lanes < k, best, _MAX_KEY), axis=0)
    changed = tl.zeros((), dtype=tl.int32)
    g = tl.arange(0, GROUPS_PAD)
    g_ok = g < groups
    at_groups = group_next_ptr + row * groups

    # Groups that may hold more of the top k than the R chunk keys they kept: read the rest of their keys.
    pushed = tl.load(at_groups + g, mask=g_ok, other=_MIN_KEY)
    flags = (pushed != _MIN_KEY) & (pushed >= kth)
    last = tl.full((), -1, tl.int32)
    for _ in range(tl.sum(flags.to(tl.int32), axis=0)):
        gi = tl.min(tl.where(flags & (g > last), g, GROUPS_PAD), axis=0)
        last = gi
        if tl.load(at_groups + gi) >= kth:  # kth may have risen since the flags were taken
            floor = tl.load(group_top_ptr + (row * groups + gi) * R + R - 1)  # keys ≥ it are in best already
            lo = gi * span
            hi = tl.minimum(lo + span, chunks)
            for c0 in range(lo, hi, PIECE):
                c = c0 + tl.arange(0, PIECE)
                keys = tl.load(chunk_key_ptr + c.to(tl.int64) * batch + row, mask=c < hi, other=_MIN_KEY)
                best, kth, changed = _insert(
                    best, kth, tl.where(keys < floor, keys, _MIN_KEY), lanes, k, changed
                )

    # Groups with a chunk whose second-best item may be in the top k: rescore those chunks item by item.
    at_groups = group_opt_ptr + row * groups
    bounds = tl.load(at_groups + g, mask=g_ok, other=_MIN_KEY)
    flags = (bounds != _MIN_KEY) & (bounds >= kth)
    last = tl.full((), -1, tl.int32)
    for _ in range(tl.sum(flags.to(tl.int32), axis=0)):
        gi = tl.min(tl.where(flags & (g > last), g, GROUPS_PAD), axis=0)
        last = gi
        if tl.load(at_groups + gi) >= kth:
            lo = gi * span
            hi = tl.minimum(lo + span, chunks)
            for c0 in range(lo, hi, PIECE):
                c = c0 + tl.arange(0, PIECE)
                c_ok = c < hi
                sec = tl.load(chunk_sec_ptr + c.to(tl.int64) * batch + row, mask=c_ok, other=-float("inf"))
                bound = tl.where(c_ok & (sec > -float("inf")), _pack(sec, 1 + c * G), _MIN_KEY)
                cflags = (bound != _MIN_KEY) & (bound >= kth)
                clast = c0 - 1
                for _ in range(tl.sum(cflags.to(tl.int32), axis=0)):
                    ci = tl.min(tl.where(cflags & (c > clast), c, c0 + PIECE), axis=0)
                    clast = ci
                    if tl.max(tl.where(c == ci, bound, _MIN_KEY), axis=0) >= kth:
                        own = _item(tl.load(chunk_key_ptr + ci.to(tl.int64) * batch + row))
                        best, kth, changed = _rescore_chunk(
                            best,
                            kth,
                            lanes,
                            k,
                            changed,
                            states_ptr,
                            table_ptr,
                            row,
                            ci,
                            own,
                            items,
                            dim,
                            stride_s,
                            stride_t,
                            G,
                            D_PAD,
                            FULL_D,
                            BLOCK_K,
                            EVEN_K,
                            RESIDENT,
                            UPCAST,
                            PRECISION,
                            BLOCK_M,
                            BLOCK_N,
                        )

    if changed > 0:  # the first k lanes hold the top k, but no longer in order
        best = _sort(tl.where(lanes < k, best, _MIN_KEY), W, LOG_W, INTERPRET)
    out = row * stride_out + lanes
    tl.store(scores_ptr + out, _score(best).to(scores_ptr.dtype.element_ty), mask=lanes < k)
    tl.store(items_ptr + out, _item(best).to(tl.int64), mask=lanes < k)


# ---------------------------------------------------------------------------------------------- host side


def _configs(shapes) -> list:
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w, s in shapes]


# The scan's tiles (BLOCK_M rows × BLOCK_N items, the whole width d per step) for Hopper: the states' block
# (BLOCK_M × d) stays in shared memory, so a pipeline stage is one table tile (BLOCK_N × d: 32 kB at BLOCK_N =
# 64 in fp16 at d = 256) and num_stages of them fit beside it. At least 3 stages: the pipeliner issues the
# copy of tile i + num_stages − 1 at the end of iteration i, so with 2 the copy is waited on as soon as it is
# issued. 8 warps = two warpgroups over the rows. 256 rows read each table tile once at B = 256; 64 rows for
# small B.
GPU_CONFIGS = _configs(((128, 64, 8, 4), (256, 64, 8, 3), (64, 128, 4, 3), (64, 64, 4, 4)))
# One small config in the interpreter (it cannot benchmark), so fuzz cases cross many tiles, chunks, groups.
INTERPRETER_CONFIGS = _configs(((16, 16, 4, 1),))
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
SWEEP_CONFIGS = _configs(
    (
        (128, 64, 8, 3),
        (128, 64, 8, 4),
        (128, 64, 4, 4),
        (256, 64, 8, 3),
        (256, 64, 8, 2),
        (64, 128, 4, 3),
        (64, 64, 4, 4),
        (128, 128, 8, 2),
    )
)
#: Always fits: no operand kept on chip, two small stages (the autotuner's last resort for very wide d).
_SAFE_CONFIG = _configs(((64, 64, 4, 2),))[0]

if interpreting():
    # Small everything, so that the fuzz's catalogues of ≤ 200 items still span several chunks per group and
    # several groups, chunks of two tiles, groups that keep only R = 2 keys, and both operand modes (rows of
    # up to 64 bytes stay on chip: d ≤ 16 in fp32, d ≤ 32 in 16 bits).
    CHUNK, RANK, TARGET_GROUPS, BLOCK_K, ROW_BYTES, PIECE_MAX, RESCORE_TILE = 32, 2, 3, 16, 64, 4, (16, 16)
else:
    # G = 128 items per chunk (a multiple of every BLOCK_N above); R = 4 kept chunk keys per group; the
    # states' block stays on chip when a row is ≤ 512 bytes (d ≤ 256 in 16 bits, d ≤ 128 in fp32): at most
    # 128 kB for 256 rows, beside two to four table tiles. The finish rescores on 64 × 64 tiles (one
    # warpgroup).
    CHUNK, RANK, TARGET_GROUPS, BLOCK_K, ROW_BYTES, PIECE_MAX, RESCORE_TILE = (
        128,
        4,
        128,
        64,
        512,
        256,
        (64, 64),
    )
_SHARED_BYTES = (
    225 * 1024
)  # Hopper: 227 kB per block, less what the reductions and layout changes borrow (1 kB)


def _shared_bytes(config: triton.Config, elt: int, d_pad: int, block_k: int, resident: bool) -> int:
    """Estimated shared memory of the scan at ``config``: the kept states' block plus num_stages table
    tiles."""
    bm, bn = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
    if resident:
        return (bm + config.num_stages * bn) * d_pad * elt
    return config.num_stages * (bm + bn) * block_k * elt


def _prune(configs, named_args, **kwargs) -> list:
    """Drop configs whose buffers cannot fit (each would cost a compile before failing to launch)."""
    elt = named_args["states_ptr"].element_size()
    fits = [
        c
        for c in configs
        if _shared_bytes(c, elt, kwargs["D_PAD"], kwargs["BLOCK_K"], kwargs["RESIDENT"]) <= _SHARED_BYTES
    ]
    return fits or [_SAFE_CONFIG]


catalogue_scan_autotuned = triton.autotune(
    configs=CONFIGS,
    key=["batch_bucket", "D_PAD", "RESIDENT", "G"],
    prune_configs_by={"early_config_prune": _prune},
)(catalogue_scan_kernel)


@functools.lru_cache(maxsize=8)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _group_span(chunks: int, device: torch.device) -> int:
    """Chunks per group: about one group per SM (each group is one program per row block), at most
    TARGET_GROUPS groups so the finish's first sort stays at groups × R ≤ 512 keys."""
    target = (
        TARGET_GROUPS if device.type != "cuda" else min(TARGET_GROUPS, _multiprocessors(device.index or 0))
    )
    return triton.cdiv(chunks, max(1, target))


def catalogue_topk_triton(
    states: torch.Tensor, table: torch.Tensor, k: int, *, config: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton implementation of ``kernels.catalogue_topk.catalogue_topk`` (same contract).

    ``config`` (e.g. {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 4}) bypasses the
    autotuner: for tests that check every tuned config, and for sweeps.

    Two launches and no host synchronisation: safe to capture in a CUDA graph (once autotuned).
    """
    check_device("catalogue_topk", states, table)
    batch, dim = states.shape
    num_items = table.shape[0]
    device = states.device
    scores = torch.empty(batch, k, dtype=states.dtype, device=device)
    items = torch.empty(batch, k, dtype=torch.int64, device=device)
    if batch == 0:
        return scores, items
    states = states if states.stride(1) == 1 else states.contiguous()
    table = table if table.stride(1) == 1 else table.contiguous()
    # A chunk is whole tiles: a config wider than CHUNK (a GPU config under the interpreter) widens it.
    chunk = CHUNK if config is None else max(CHUNK, config["BLOCK_N"])
    chunks = triton.cdiv(num_items - 1, chunk)
    span = _group_span(chunks, device)
    groups = triton.cdiv(chunks, span)
    # Every slot of these is written by the scan before the finish reads it.
    chunk_key = torch.empty(chunks * batch, dtype=torch.int64, device=device)
    chunk_sec = torch.empty(chunks * batch, dtype=torch.float32, device=device)
    group_top = torch.empty(batch * groups * RANK, dtype=torch.int64, device=device)
    group_next = torch.empty(batch * groups, dtype=torch.int64, device=device)
    group_opt = torch.empty(batch * groups, dtype=torch.int64, device=device)
    if interpreting():
        upcast, precision = True, "ieee"
    else:
        upcast, precision = False, ("tf32x3" if states.dtype == torch.float32 else "tf32")
    d_pad = max(16, triton.next_power_of_2(dim))
    block_k = min(BLOCK_K, d_pad)
    # Decided by the shape alone, not by the tile config: the finish must step along d exactly as the
    # scan did.
    resident = d_pad * states.element_size() <= ROW_BYTES
    modes = {
        "D_PAD": d_pad,
        "FULL_D": dim == d_pad,
        "BLOCK_K": block_k,
        "EVEN_K": dim % block_k == 0,
        "RESIDENT": resident,
        "UPCAST": upcast,
        "PRECISION": precision,
    }
    args = (
        states,
        table,
        chunk_key,
        chunk_sec,
        group_top,
        group_next,
        group_opt,
        batch,
        num_items,
        dim,
        chunks,
        span,
        states.stride(0),
        table.stride(0),
        int(batch > 64),
    )
    # Row blocks vary fastest: the programs of one group, which read the same table tiles, run side by side.
    if config is None:
        catalogue_scan_autotuned[lambda meta: (triton.cdiv(batch, meta["BLOCK_M"]), groups)](
            *args, G=chunk, R=RANK, **modes
        )
    else:
        catalogue_scan_kernel[(triton.cdiv(batch, config["BLOCK_M"]), groups)](
            *args, G=chunk, R=RANK, **modes, **config
        )
    width = max(triton.next_power_of_2(k), triton.next_power_of_2(groups * RANK))
    catalogue_finish_kernel[(batch,)](
        states,
        table,
        chunk_key,
        chunk_sec,
        group_top,
        group_next,
        group_opt,
        scores,
        items,
        batch,
        num_items,
        dim,
        chunks,
        groups,
        span,
        k,
        states.stride(0),
        table.stride(0),
        k,
        G=chunk,
        R=RANK,
        W=width,
        LOG_W=width.bit_length() - 1,
        GROUPS_PAD=triton.next_power_of_2(groups),
        PIECE=min(triton.next_power_of_2(span), PIECE_MAX),
        **modes,
        BLOCK_M=RESCORE_TILE[0],
        BLOCK_N=RESCORE_TILE[1],
        INTERPRET=interpreting(),
        num_warps=4,
    )
    return scores, items
