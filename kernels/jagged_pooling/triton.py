"""Triton kernel of jagged embedding-bag pooling: gather table rows by id and sum/mean them, in one pass.

One program per (batch row, BLOCK_D column slice) walks its row's ids in chunks of BLOCK_N, gathers the
[BLOCK_N, BLOCK_D] table tile, accumulates it in fp32 registers and reduces once at the end. The op is a pure
gather: at B=4096, mean history 128, D=128 it reads N·D·itemsize of table rows (134 MB in fp16) and does
one add per element, so it is judged by the fraction of HBM bandwidth it reaches.

Imported only on the kernel='triton' path (kernels.jagged_pooling imports it lazily).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import count_dispatch
from .._triton import check_device, interpreting

GPU_CONFIGS = [
    triton.Config({"BLOCK_N": n}, num_warps=w, num_stages=s)
    for n, w, s in ((16, 4, 2), (16, 4, 3), (32, 4, 2), (64, 4, 2))
]
# One config in the interpreter: it cannot benchmark, and all configs compute the same thing.
INTERPRETER_CONFIGS = [triton.Config({"BLOCK_N": 16}, num_warps=4, num_stages=1)]
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
# The wider set the micro-benchmark times one by one (bench/kernels/micro.py --sweep) to choose GPU_CONFIGS.
SWEEP_CONFIGS = [
    triton.Config({"BLOCK_N": n}, num_warps=w, num_stages=s)
    for n, w, s in (
        (8, 2, 2),
        (16, 2, 2),
        (16, 4, 1),
        (16, 4, 2),
        (16, 4, 3),
        (32, 4, 1),
        (32, 4, 2),
        (32, 4, 3),
        (32, 8, 2),
        (64, 2, 2),
        (64, 4, 2),
        (64, 4, 3),
        (64, 8, 2),
        (128, 4, 2),
        (128, 8, 2),
    )
]


@triton.jit
def jagged_pooling_kernel(
    values_ptr,
    offsets_ptr,
    table_ptr,
    out_ptr,
    D,
    table_stride,
    MEAN: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[b, d] = Σ_{n in row b} table[values[n], d]  (÷ max(len, 1) when MEAN)."""
    b = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    col_ok = cols < D
    start = tl.load(offsets_ptr + b)
    end = tl.load(offsets_ptr + b + 1)
    acc = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    for n0 in range(start, end, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < end
        ids = tl.load(values_ptr + n, mask=n_ok, other=0)
        rows = tl.load(
            table_ptr + ids[:, None] * table_stride + cols[None, :],
            mask=n_ok[:, None] & col_ok[None, :],
            other=0.0,
        )
        acc += rows.to(tl.float32)
    pooled = tl.sum(acc, axis=0)
    if MEAN:
        pooled = pooled / tl.maximum(end - start, 1).to(tl.float32)
    tl.store(out_ptr + b.to(tl.int64) * D + cols, pooled.to(out_ptr.dtype.element_ty), mask=col_ok)


jagged_pooling_autotuned = triton.autotune(configs=CONFIGS, key=["BLOCK_D", "MEAN"])(jagged_pooling_kernel)


def jagged_pooling_triton(
    values: torch.Tensor,
    offsets: torch.Tensor,
    table: torch.Tensor,
    *,
    mode: str = "sum",
    config: dict | None = None,
) -> torch.Tensor:
    """Triton implementation of ``kernels.jagged_pooling.jagged_pooling`` (same contract).

    ``config`` (e.g. {"BLOCK_N": 32, "num_warps": 4, "num_stages": 2}) bypasses the autotuner: for tests
    that check every tuned config, and for sweeps in the micro-benchmark.
    """
    count_dispatch("jagged_pooling", "triton")
    check_device("jagged_pooling", values, offsets, table)
    values = values.contiguous()
    offsets = offsets.contiguous()
    if table.stride(1) != 1:
        table = table.contiguous()
    rows = offsets.numel() - 1
    dim = table.shape[1]
    out = torch.empty(rows, dim, dtype=table.dtype, device=table.device)
    if rows <= 0 or dim == 0:
        return out.zero_()
    block_d = 64 if dim <= 64 else 128  # two tiles only, so autotune keys stay few; columns are masked
    grid = (rows, triton.cdiv(dim, block_d))
    args = (values, offsets, table, out, dim, table.stride(0))
    params = {"MEAN": mode == "mean", "BLOCK_D": block_d}
    if config is None:
        jagged_pooling_autotuned[grid](*args, **params)
    else:
        jagged_pooling_kernel[grid](*args, **params, **config)
    return out
