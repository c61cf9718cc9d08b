"""Triton kernels of the full-catalogue top-k: one pass over the table, then a small exact per-row finish.
This file is the algorithm and the host side (configs, autotuning, launches); the kernels are in
scan_triton.py (pass 1), finish_triton.py (pass 2) and keys.py (the keys both share).

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

from .._triton import check_device, interpreting
from .finish_triton import catalogue_finish_kernel
from .scan_triton import catalogue_scan_kernel


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
#: Least sort width and group lanes of the finish on the GPU; 1 in the interpreter, whose fuzz should cross
#: the small widths too.
FINISH_FLOOR = 1 if interpreting() else 64
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


def finish_sizes(k: int, groups: int, span: int) -> dict:
    """The finish's size constexprs: its sort width W (≥ k and ≥ the kept keys), the padded group count, and
    how many chunk keys it reads at once."""
    # The finish compiles once per (W, GROUPS_PAD): floors on both keep that to a handful of variants over
    # every k and catalogue size (a 64-key sort costs nothing beside the scan), not one per power of two.
    width = max(triton.next_power_of_2(k), triton.next_power_of_2(groups * RANK), FINISH_FLOOR)
    return {
        "W": width,
        "LOG_W": width.bit_length() - 1,
        "GROUPS_PAD": max(triton.next_power_of_2(groups), FINISH_FLOOR),
        "PIECE": min(triton.next_power_of_2(span), PIECE_MAX),
    }


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
        **finish_sizes(k, groups, span),
        **modes,
        BLOCK_M=RESCORE_TILE[0],
        BLOCK_N=RESCORE_TILE[1],
        INTERPRET=interpreting(),
        num_warps=4,
    )
    return scores, items
