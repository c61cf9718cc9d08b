"""Fused Triton kernel of the dot interaction: one pass over x, the triangle written straight to the output.

Each program loads ROWS batch rows as [BLOCK_F, BLOCK_K] tiles, forms x·xᵀ with tl.dot in fp32 and stores
only the strictly lower triangle, at flat index i(i−1)/2 + j: the same order as torch.tril_indices(F, F, -1).
The op is memory bound (B=4096, F=32, D=128 fp16 reads 33.5 MB and writes 4 MB for 1.1 GFLOP), so the
tuning is about keeping enough loads in flight, not about the dot.

Imported only on the kernel='triton' path (kernels.interaction imports it lazily).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import count_dispatch
from .._triton import check_device, interpreting

# Tile shapes tried by @triton.autotune on the GPU. ROWS batch rows per program, unrolled, keep several
# independent 8 kB loads in flight per program.
GPU_CONFIGS = [
    triton.Config({"ROWS": rows}, num_warps=warps, num_stages=1)
    for rows, warps in ((1, 2), (1, 4), (2, 2), (4, 4))
]
# The interpreter cannot benchmark (autotune needs CUDA events), and runs configs identically, so it gets
# one; ROWS=2 keeps the row-tail masking exercised on CPU.
INTERPRETER_CONFIGS = [triton.Config({"ROWS": 2}, num_warps=4, num_stages=1)]
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
# The wider set the micro-benchmark times one by one (bench/kernels/micro.py --sweep) to choose GPU_CONFIGS.
# (A persistent variant striding over the batch with pipelined loads was tried too: 21.2-23.3 us against
# 21.4-21.9 us for these at B=4096 F=32 D=128 fp16, so it was not kept.)
SWEEP_CONFIGS = [
    triton.Config({"ROWS": rows}, num_warps=warps, num_stages=stages)
    for rows, warps, stages in ((1, 2, 1), (1, 4, 1), (2, 2, 1), (2, 4, 1), (4, 4, 1), (1, 4, 2), (2, 2, 2))
]
# fp32 only: how much tf32x3 costs against exact FMA (ieee) and smaller K tiles.
SWEEP_CONFIGS_FP32 = [
    triton.Config({"ROWS": 1, "PRECISION": precision, "BLOCK_K": block_k}, num_warps=warps, num_stages=1)
    for precision, block_k, warps in (
        ("tf32x3", 128, 4),
        ("tf32x3", 64, 4),
        ("tf32x3", 32, 4),
        ("ieee", 128, 4),
        ("ieee", 64, 4),
        ("ieee", 32, 4),
        ("ieee", 64, 8),
        ("tf32x3", 64, 8),
    )
]


@triton.jit
def interaction_kernel(
    x_ptr,
    out_ptr,
    B,
    F,
    D,
    out_stride,
    out_col0,
    BLOCK_F: tl.constexpr,
    BLOCK_K: tl.constexpr,
    ROWS: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """x [B, F, D] contiguous → out[b, out_col0 + i(i−1)/2 + j] = <x[b, i], x[b, j]> for j < i < F."""
    pid = tl.program_id(0)
    fi = tl.arange(0, BLOCK_F)
    kk = tl.arange(0, BLOCK_K)
    i = fi[:, None]
    j = fi[None, :]
    tri_off = i * (i - 1) // 2 + j
    for r in tl.static_range(ROWS):
        b = pid * ROWS + r
        # Rows past B get a feature bound ≤ 0, which masks all their loads and stores. (A scalar `b < B`
        # and-ed into the block masks would do the same on the GPU, but the interpreter rejects that mask.)
        f_lim = tl.minimum(F, (B - b) * F)
        x_row = x_ptr + b.to(tl.int64) * F * D
        acc = tl.zeros((BLOCK_F, BLOCK_F), dtype=tl.float32)
        for k0 in range(0, D, BLOCK_K):
            cols = k0 + kk
            m = (fi[:, None] < f_lim) & (cols[None, :] < D)
            xt = tl.load(x_row + fi[:, None] * D + cols[None, :], mask=m, other=0.0)
            if UPCAST:
                # The interpreter's bf16 dot is wrong; fp32 products of bf16/fp16 inputs are exact anyway.
                xt = xt.to(tl.float32)
            acc = tl.dot(xt, tl.trans(xt), acc, input_precision=PRECISION)
        out_row = out_ptr + b.to(tl.int64) * out_stride + out_col0
        tl.store(out_row + tri_off, acc.to(out_ptr.dtype.element_ty), mask=(j < i) & (i < f_lim))


interaction_autotuned = triton.autotune(configs=CONFIGS, key=["BLOCK_F", "BLOCK_K"])(interaction_kernel)


def launch_params(x: torch.Tensor) -> dict:
    """The compile-time parameters for x: tile sizes (≥ 16, the GPU's minimum dot size) and dot precision."""
    _, features, dim = x.shape
    block_f = max(16, triton.next_power_of_2(features))
    # Two K tiles only (64 or 128), so autotune keys stay few; capped at 8k elements so wide F does not
    # spill registers. Masked loads make any D work with either. fp32 takes K=32: its tf32x3 dot splits
    # every operand in three, and at K=128 that costs 93.6 us against 66.3 us at K=32 (H100, B=4096 F=32).
    block_k = max(16, min(64 if dim <= 64 else 128, 8192 // block_f))
    if x.dtype == torch.float32:
        block_k = 32
    if interpreting():
        upcast, precision = True, "ieee"  # exact fp32 on CPU
    elif x.dtype == torch.float32:
        # tf32x3 keeps fp32 accuracy (the reference is IEEE fp32) on tensor cores; plain tf32 would not.
        upcast, precision = False, "tf32x3"
    else:
        upcast, precision = False, "tf32"  # ignored for 16-bit inputs: fp16/bf16 products are exact in fp32
    return {"BLOCK_F": block_f, "BLOCK_K": block_k, "UPCAST": upcast, "PRECISION": precision}


def interaction_triton(
    x: torch.Tensor, *, dense: torch.Tensor | None = None, config: dict | None = None
) -> torch.Tensor:
    """Triton implementation of ``kernels.interaction.interaction`` (same contract).

    ``config`` (e.g. {"ROWS": 2, "num_warps": 4, "num_stages": 1}, optionally with PRECISION, UPCAST or
    BLOCK_K overrides) bypasses the autotuner: for tests that check every tuned config, and for tile sweeps
    in the micro-benchmark.
    """
    count_dispatch("interaction", "triton")
    check_device("interaction", x, *(() if dense is None else (dense,)))
    x = x.contiguous()
    batch, features, _ = x.shape
    pairs = features * (features - 1) // 2
    extra = 0 if dense is None else dense.shape[1]
    if dense is not None and dense.shape[0] != batch:
        raise ValueError(f"interaction | dense has {dense.shape[0]} rows but x has {batch}")
    out = torch.empty(batch, extra + pairs, dtype=x.dtype, device=x.device)
    if dense is not None:
        out[:, :extra].copy_(dense)
    if batch == 0 or pairs == 0:
        return out
    args = (x, out, batch, features, x.shape[2], out.stride(0), extra)
    params = launch_params(x)
    if config is None:
        interaction_autotuned[lambda meta: (triton.cdiv(batch, meta["ROWS"]),)](*args, **params)
    else:
        config = dict(config)
        params.update({k: config.pop(k) for k in ("PRECISION", "UPCAST", "BLOCK_K") if k in config})
        interaction_kernel[(triton.cdiv(batch, config["ROWS"]),)](*args, **params, **config)
    return out
