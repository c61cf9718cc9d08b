"""Pass 2 of the catalogue top-k: one program per row turns the scan's kept keys into the exact top k (see
triton.py for the algorithm and why it is exact)."""

from __future__ import annotations

import triton
import triton.language as tl

from .bitonic import sort_descending
from .keys import MAX_KEY, MIN_KEY, key_items, key_scores, pack_keys
from .scan_triton import _tile_scores


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
        new = tl.where(new == x, MIN_KEY, new)
        take = x > kth
        slot = tl.argmin(tl.where(lanes < k, best, MAX_KEY), axis=0)
        best = tl.where((lanes == slot) & take, x, best)
        kth = tl.min(tl.where(lanes < k, best, MAX_KEY), axis=0)
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
        new = tl.where(col_ok & (cols != own), pack_keys(tl.max(s, axis=0), cols), MIN_KEY)
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
    best = tl.load(group_top_ptr + row * groups * R + lanes, mask=lanes < groups * R, other=MIN_KEY)
    best = _sort(best, W, LOG_W, INTERPRET)
    kth = tl.min(tl.where(lanes < k, best, MAX_KEY), axis=0)
    changed = tl.zeros((), dtype=tl.int32)
    g = tl.arange(0, GROUPS_PAD)
    g_ok = g < groups
    at_groups = group_next_ptr + row * groups

    # Groups that may hold more of the top k than the R chunk keys they kept: read the rest of their keys.
    pushed = tl.load(at_groups + g, mask=g_ok, other=MIN_KEY)
    flags = (pushed != MIN_KEY) & (pushed >= kth)
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
                keys = tl.load(chunk_key_ptr + c.to(tl.int64) * batch + row, mask=c < hi, other=MIN_KEY)
                best, kth, changed = _insert(
                    best, kth, tl.where(keys < floor, keys, MIN_KEY), lanes, k, changed
                )

    # Groups with a chunk whose second-best item may be in the top k: rescore those chunks item by item.
    at_groups = group_opt_ptr + row * groups
    bounds = tl.load(at_groups + g, mask=g_ok, other=MIN_KEY)
    flags = (bounds != MIN_KEY) & (bounds >= kth)
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
                bound = tl.where(c_ok & (sec > -float("inf")), pack_keys(sec, 1 + c * G), MIN_KEY)
                cflags = (bound != MIN_KEY) & (bound >= kth)
                clast = c0 - 1
                for _ in range(tl.sum(cflags.to(tl.int32), axis=0)):
                    ci = tl.min(tl.where(cflags & (c > clast), c, c0 + PIECE), axis=0)
                    clast = ci
                    if tl.max(tl.where(c == ci, bound, MIN_KEY), axis=0) >= kth:
                        own = key_items(tl.load(chunk_key_ptr + ci.to(tl.int64) * batch + row))
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
        best = _sort(tl.where(lanes < k, best, MIN_KEY), W, LOG_W, INTERPRET)
    out = row * stride_out + lanes
    tl.store(scores_ptr + out, key_scores(best).to(scores_ptr.dtype.element_ty), mask=lanes < k)
    tl.store(items_ptr + out, key_items(best).to(tl.int64), mask=lanes < k)
