"""Triton kernels of the full-catalogue top-k: scores tile by tile, never the [B, N] matrix.

Two launches:

1. ``catalogue_filter_kernel``: program (row block, split) computes S = states·tileᵀ for its rows over every
   ``splits``-th item tile of BLOCK_N items, on the tensor cores in fp32. Each row keeps a candidate buffer of
   CAPS slots (score, item) in global scratch (L2-resident, its own region: appends need no atomics) and a
   threshold τ: items scoring ≥ τ are appended. When a buffer would overflow, the program sorts its rows'
   buffers, keeps each row's best k and raises τ to the k-th of them. That τ is a lower bound of the row's
   k-th score over the whole catalogue, so nothing below it can be in the answer; the program publishes it
   (atomic max per row) and every program filters with the highest published τ. At the end each region is
   left sorted, with at most k candidates.
2. ``catalogue_merge_kernel``: one program per row folds the splits' regions into its best K_OUT: the
   elementwise max of a descending run and an ascending one holds the top of both and is bitonic, so each
   region costs a bitonic merge (log2 K_OUT steps), not a sort.

Sorting works on int64 keys: the fp32 score's bits made order-preserving in the high word, 2^31 − 1 − item in
the low word, so one integer order ranks by score and breaks ties towards the lower item id.

Imported only on the kernel='triton' path (kernels.catalogue_topk imports it lazily).
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .._triton import check_device, interpreting
from .bitonic import merge_descending, sort_descending


def _start_without_threshold(nargs: dict) -> None:
    """Config pre-hook: every run, autotuning's timed ones included, starts from a shared τ of −inf (a τ left
    by an earlier run on the same inputs would still be correct, but would time a head start)."""
    nargs["shared_tau_ptr"].fill_(-float("inf"))


def _configs(shapes) -> list:
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": kk}, num_warps=w, num_stages=s,
                          pre_hook=_start_without_threshold) for m, n, kk, w, s in shapes]


# Two configs: each compile of this kernel takes seconds (the sort), and the fuzz compiles per dtype and k.
GPU_CONFIGS = _configs(((128, 128, 64, 8, 3), (128, 64, 64, 4, 3)))
# One small config in the interpreter (it cannot benchmark), so fuzz cases cross many tiles and compactions.
INTERPRETER_CONFIGS = _configs(((16, 16, 16, 4, 1),))
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
SWEEP_CONFIGS = _configs((
    (128, 128, 64, 8, 4), (128, 64, 64, 8, 3), (128, 32, 64, 4, 3), (64, 64, 64, 4, 3), (256, 64, 64, 8, 3),
))

# Globals a kernel reads must be constexpr.
_MIN_KEY = tl.constexpr(-(2**63))  # sorts after every real candidate


@triton.jit
def _pack(scores, items):
    """Order-preserving int64 keys of fp32 scores and int32 item ids (same shapes)."""
    bits = scores.to(tl.int32, bitcast=True)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats: flip the magnitude bits
    return (ordered.to(tl.int64) << 32) | (2147483647 - items).to(tl.int64)  # 2^31 − 1 − item: lower ids rank first


@triton.jit
def _load_keys(scores_at, items_at, mask):
    """Candidates as keys, _MIN_KEY where ``mask`` is off."""
    keys = _pack(tl.load(scores_at, mask=mask, other=0.0), tl.load(items_at, mask=mask, other=0))
    return tl.where(mask, keys, _MIN_KEY)


@triton.jit
def _score(keys):
    """fp32 score of int64 keys (the inverse of the high word of ``_pack``)."""
    high = (keys >> 32).to(tl.int32)
    return (high ^ ((high >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)


@triton.jit
def _item(keys):
    return 2147483647 - (keys & 0x7FFFFFFF).to(tl.int32)


@triton.jit
def _sort_rows(x, ROWS: tl.constexpr, N: tl.constexpr, LOG_N: tl.constexpr, BITONIC_RUNS: tl.constexpr,
               INTERPRET: tl.constexpr):
    """Each row of x [ROWS, N] sorted descending (rows that are a descending run's elementwise max with an
    ascending one when BITONIC_RUNS).

    tl.sort on the GPU; in the interpreter the network of bitonic.py, the same function: the interpreter runs
    tl.sort's xor-reductions element by element in Python (minutes per fuzz run), but compiled, that network's
    reshapes cost ten times tl.sort's code size and ptxas time.
    """
    if INTERPRET:
        if BITONIC_RUNS:
            return merge_descending(x, ROWS, N, LOG_N)
        else:
            return sort_descending(x, ROWS, N, LOG_N)
    else:
        return tl.sort(x, dim=1, descending=True)


@triton.jit
def _compact(cand_scores_ptr, cand_items_ptr, counts_ptr, taus_ptr, shared_tau_ptr, count, tau, row0, split,
             splits, batch, k, BLOCK_M: tl.constexpr, CAPS: tl.constexpr, LOG_CAPS: tl.constexpr,
             SORT_ROWS: tl.constexpr, INTERPRET: tl.constexpr):
    """Sort each row's candidates, keep its best k, raise its τ to the k-th and publish it; returns the new
    (count, tau) [BLOCK_M].

    Register tensors cannot be sliced, so rows are sorted SORT_ROWS at a time with count and τ passed through
    scratch; the barriers order those global writes and reads between the program's threads.
    """
    rows = row0 + tl.arange(0, BLOCK_M)
    region = rows.to(tl.int64) * splits + split
    tl.store(counts_ptr + region, count)
    tl.store(taus_ptr + region, tau)
    tl.debug_barrier()
    slots = tl.arange(0, CAPS)
    for r0 in range(0, BLOCK_M, SORT_ROWS):
        sub = (row0 + r0 + tl.arange(0, SORT_ROWS)).to(tl.int64) * splits + split
        c = tl.load(counts_ptr + sub)
        t = tl.load(taus_ptr + sub)
        at = sub[:, None] * CAPS + slots[None, :]
        keys = _load_keys(cand_scores_ptr + at, cand_items_ptr + at, slots[None, :] < c[:, None])
        keys = _sort_rows(keys, SORT_ROWS, CAPS, LOG_CAPS, False, INTERPRET)
        tl.store(cand_scores_ptr + at, _score(keys))
        tl.store(cand_items_ptr + at, _item(keys))
        kth = tl.max(tl.where(slots[None, :] == k - 1, keys, _MIN_KEY), axis=1)
        tl.store(taus_ptr + sub, tl.where(c >= k, tl.maximum(t, _score(kth)), t))
        tl.store(counts_ptr + sub, tl.minimum(c, k))
    tl.debug_barrier()
    count = tl.load(counts_ptr + region)
    tau = tl.load(taus_ptr + region)
    # Any program's k-th best bounds the row's k-th best from below: share it, so all programs filter harder.
    tl.atomic_max(shared_tau_ptr + rows, tau, mask=rows < batch, sem="relaxed")
    return count, tau


# Sizes that vary per call are not specialised on (each value class would be another compile); the strides
# are, and EVEN_K drops the mask along d, which is what lets the operand loads be 16 bytes wide.
@triton.jit(do_not_specialize=["batch", "items", "dim", "k", "batch_bucket"])
def catalogue_filter_kernel(
    states_ptr, table_ptr, cand_scores_ptr, cand_items_ptr, counts_ptr, taus_ptr, shared_tau_ptr,
    batch, items, dim, k, stride_s, stride_t,
    batch_bucket,  # only an autotune key
    CAPS: tl.constexpr, LOG_CAPS: tl.constexpr, SORT_ROWS: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr, UPCAST: tl.constexpr,
    PRECISION: tl.constexpr, INTERPRET: tl.constexpr,
):
    """Each row's best k among the items of every splits-th tile, sorted, in its region; see the module doc."""
    row0 = tl.program_id(0) * BLOCK_M
    split = tl.program_id(1)
    splits = tl.num_programs(1)
    rows = row0 + tl.arange(0, BLOCK_M)
    row_ok = rows < batch
    region = rows.to(tl.int64) * splits + split
    count = tl.zeros((BLOCK_M,), dtype=tl.int32)
    tau = tl.where(row_ok, -float("inf"), float("inf"))  # rows past the batch never take a candidate
    ks = tl.arange(0, BLOCK_K)
    num_tiles = tl.cdiv(items - 1, BLOCK_N)
    region = region.to(tl.int32) * CAPS  # first slot of each row's region (the scratch stays under 2^31 slots)
    # A step past the program's last tile scores nothing and always compacts: each region ends sorted with at
    # most k candidates, and the sort is compiled once (it dominates the kernel's size). Compacting after the
    # appends, whenever a tile might not fit any more, keeps the scores tile out of the sort's registers.
    for tile in range(split, num_tiles + splits, splits):
        tau = tl.maximum(tau, tl.load(shared_tau_ptr + rows, mask=row_ok, other=float("inf")))
        cols = 1 + tile * BLOCK_N + tl.arange(0, BLOCK_N)  # item ids; row 0 of the table is padding
        col_ok = cols < items
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        if tile < num_tiles:
            for k0 in range(0, dim, BLOCK_K):
                kk = k0 + ks
                k_ok = (kk < dim) | EVEN_K
                a = tl.load(states_ptr + rows[:, None] * stride_s + kk[None, :],
                            mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                b = tl.load(table_ptr + cols.to(tl.int64)[:, None] * stride_t + kk[None, :],
                            mask=col_ok[:, None] & k_ok[None, :], other=0.0)
                if UPCAST:  # the interpreter's 16-bit dot is not exact; fp32 products of 16-bit inputs are
                    a = a.to(tl.float32)
                    b = b.to(tl.float32)
                acc = tl.dot(a, tl.trans(b), acc, input_precision=PRECISION)
        passing = col_ok[None, :] & (acc >= tau[:, None])
        taken = tl.sum(passing.to(tl.int32), axis=1)
        if tl.max(taken, axis=0) > 0:
            at = (region + count)[:, None] + tl.cumsum(passing.to(tl.int32), axis=1) - 1
            tl.store(cand_scores_ptr + at, acc, mask=passing)
            tl.store(cand_items_ptr + at, tl.broadcast_to(cols[None, :], (BLOCK_M, BLOCK_N)), mask=passing)
            count += taken
        if (tile >= num_tiles) | (tl.max(count, axis=0) > CAPS - BLOCK_N):
            count, tau = _compact(cand_scores_ptr, cand_items_ptr, counts_ptr, taus_ptr, shared_tau_ptr, count,
                                  tau, row0, split, splits, batch, k, BLOCK_M, CAPS, LOG_CAPS, SORT_ROWS,
                                  INTERPRET)


@triton.jit(do_not_specialize=["splits", "k"])
def catalogue_merge_kernel(cand_scores_ptr, cand_items_ptr, counts_ptr, scores_ptr, items_ptr, splits, k,
                           stride_out,
                           CAPS: tl.constexpr, K_OUT: tl.constexpr, LOG_K_OUT: tl.constexpr,
                           INTERPRET: tl.constexpr):
    """Top k of one row over its splits' regions (each sorted, ≤ k), best first, ties to the lower item id."""
    row = tl.program_id(0).to(tl.int64)
    out = tl.arange(0, K_OUT)
    best = tl.full((1, K_OUT), _MIN_KEY, dtype=tl.int64)
    for split in range(0, splits):
        region = row * splits + split
        count = tl.load(counts_ptr + region)
        if count > 0:
            # Read the region backwards (ascending): the elementwise max of a descending and an ascending run
            # holds the top K_OUT of both, so one sort of K_OUT (not of both runs) keeps the best so far.
            rev = K_OUT - 1 - out
            at = region * CAPS + rev
            new = _load_keys(cand_scores_ptr + at, cand_items_ptr + at, rev < count)
            best = _sort_rows(tl.maximum(best, new[None, :]), 1, K_OUT, LOG_K_OUT, True, INTERPRET)
    top = tl.reshape(best, (K_OUT,))
    tl.store(scores_ptr + row * stride_out + out, _score(top).to(scores_ptr.dtype.element_ty), mask=out < k)
    tl.store(items_ptr + row * stride_out + out, _item(top).to(tl.int64), mask=out < k)


catalogue_filter_autotuned = triton.autotune(
    configs=CONFIGS, key=["batch_bucket", "CAPS"]
)(catalogue_filter_kernel)


@functools.lru_cache(maxsize=8)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _splits(batch: int, num_items: int, block_n: int, device: torch.device) -> int:
    """Item splits per row block: about two programs per SM (row blocks counted at 128 rows), at most a tile each."""
    tiles = max(1, triton.cdiv(num_items - 1, block_n))
    if device.type != "cuda":
        return min(tiles, 3)  # the interpreter: a few splits, so the merge is exercised
    return max(1, min(tiles, (2 * _multiprocessors(device.index or 0)) // triton.cdiv(batch, 128)))


def catalogue_topk_triton(
    states: torch.Tensor, table: torch.Tensor, k: int, *, config: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton implementation of ``kernels.catalogue_topk.catalogue_topk`` (same contract).

    ``config`` (e.g. {"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "num_warps": 8, "num_stages": 3})
    bypasses the autotuner: for tests that check every tuned config, and for sweeps.
    """
    check_device("catalogue_topk", states, table)
    batch, dim = states.shape
    num_items = table.shape[0]
    scores = torch.empty(batch, k, dtype=states.dtype, device=states.device)
    items = torch.empty(batch, k, dtype=torch.int64, device=states.device)
    if batch == 0:
        return scores, items
    states = states if states.stride(1) == 1 else states.contiguous()
    table = table if table.stride(1) == 1 else table.contiguous()
    configs = CONFIGS if config is None else [triton.Config({n: config[n] for n in ("BLOCK_M", "BLOCK_N", "BLOCK_K")})]
    widest = max(c.kwargs["BLOCK_N"] for c in configs)
    # Room for the k kept after a compaction plus one tile's worth of new candidates.
    caps = triton.next_power_of_2(k + widest)  # so a compaction (down to k) always frees a tile's room
    splits = _splits(batch, num_items, min(c.kwargs["BLOCK_N"] for c in configs), states.device)
    block_m = max(c.kwargs["BLOCK_M"] for c in configs)  # the others divide it: every row block stays inside
    padded_rows = triton.cdiv(batch, block_m) * block_m
    regions = padded_rows * splits
    cand_scores = torch.empty(regions * caps, dtype=torch.float32, device=states.device)
    cand_items = torch.empty(regions * caps, dtype=torch.int32, device=states.device)
    counts = torch.empty(regions, dtype=torch.int32, device=states.device)
    taus = torch.empty(regions, dtype=torch.float32, device=states.device)
    shared_tau = torch.empty(padded_rows, dtype=torch.float32, device=states.device)
    if interpreting():
        upcast, precision = True, "ieee"
    else:
        upcast, precision = False, ("tf32x3" if states.dtype == torch.float32 else "tf32")
    args = (states, table, cand_scores, cand_items, counts, taus, shared_tau, batch, num_items, dim, k, states.stride(0),
            table.stride(0), int(batch > 32))
    # Compaction sorts SORT_ROWS rows at a time: 4096 keys (32 kB) spread over the program's threads.
    sort_rows = min(min(c.kwargs["BLOCK_M"] for c in configs), max(1, 4096 // caps))
    params = {"CAPS": caps, "LOG_CAPS": caps.bit_length() - 1, "SORT_ROWS": sort_rows, "INTERPRET": interpreting(),
              "UPCAST": upcast,
              "PRECISION": precision,
              "EVEN_K": all(dim % c.kwargs["BLOCK_K"] == 0 for c in configs)}
    if config is None:
        catalogue_filter_autotuned[lambda meta: (triton.cdiv(batch, meta["BLOCK_M"]), splits)](*args, **params)
    else:
        grid = (triton.cdiv(batch, config["BLOCK_M"]), splits)
        shared_tau.fill_(-float("inf"))
        catalogue_filter_kernel[grid](*args, **params, **config)
    # With the GPU configs (widest BLOCK_N 128, k ≤ 256) caps // 2 ≥ k: one K_OUT per caps, fewer compiles.
    k_out = max(caps // 2, triton.next_power_of_2(k))
    catalogue_merge_kernel[(batch,)](cand_scores, cand_items, counts, scores, items, splits, k, k, CAPS=caps,
                                     K_OUT=k_out, LOG_K_OUT=k_out.bit_length() - 1, INTERPRET=interpreting())
    return scores, items
