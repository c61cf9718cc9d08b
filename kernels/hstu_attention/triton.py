"""Triton kernel of causal HSTU attention over jagged q, k, v: flash-style, no score matrix is ever stored.

One program per (user, head, block of BLOCK_M queries), heaviest query block of each (user, head) first. It
keeps its queries and an fp32 [BLOCK_M, dh] accumulator in registers and walks the user's keys in blocks of
BLOCK_N: S = Q·Kᵀ on the tensor cores, W = SiLU(S/√dh) in registers (masked causally only in the diagonal
blocks), acc += W·V; the division by the number of visible positions (i + 1) is applied once per row at the
end. Users shorter than a query block's start exit at once, so the grid can be sized by the longest history
without reading the lengths on the host.

What bounds it (H100, base workload, H=8, dh=32, fp16): per score element it does 128 FLOP on the tensor cores
but also the SiLU; SiLU as x·sigmoid(x) costs two MUFU operations (ex2, rcp), as ½x·(1 + tanh(x/2)) with
tanh.approx.f32 one, and the MUFU units (16/clk/SM) are the scarcest. So 16-bit inputs on the GPU take the
tanh form (error ≤ 2^-11 relative to |x|, the same order as rounding W to fp16 for the second product); fp32
inputs and the interpreter use the exact sigmoid.

Imported only on the kernel='triton' path (kernels.hstu_attention imports it lazily).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._triton import check_device, interpreting

# BLOCK_N divides BLOCK_M, so the key blocks before a query block never straddle its diagonal.
# Chosen by the sweep on the H100 (2026-11-23, base workload, fp16): these three within 1 % of each other
# (104.9–105.2 µs before the ½-scale fold); BLOCK_M 128 loses 45 % to causal waste at these lengths.
GPU_CONFIGS = [
    triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s)
    for m, n, w, s in ((64, 64, 4, 3), (64, 32, 4, 3), (64, 64, 4, 4))
]
# One config in the interpreter (it cannot benchmark); BLOCK_N < BLOCK_M there exercises the diagonal split.
INTERPRETER_CONFIGS = [triton.Config({"BLOCK_M": 16, "BLOCK_N": 8}, num_warps=4, num_stages=1)]
CONFIGS = INTERPRETER_CONFIGS if interpreting() else GPU_CONFIGS
# The wider set the micro-benchmark times one by one (bench/kernels/hstu_micro.py --sweep) to choose
# GPU_CONFIGS.
SWEEP_CONFIGS = [
    triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s)
    for m, n, w, s in (
        (64, 64, 4, 2),
        (64, 64, 4, 3),
        (64, 32, 4, 3),
        (64, 64, 4, 4),
        (64, 32, 4, 4),
        (128, 64, 8, 3),
    )
]


@triton.jit
def silu(x, FAST: tl.constexpr):
    """SiLU in fp32; FAST: ½x·(1 + tanh(x/2)) with one tanh.approx instead of exp and a division."""
    return silu_of_half(0.5 * x, FAST)


@triton.jit
def silu_of_half(half, FAST: tl.constexpr):
    """SiLU(2·half): callers that scale their input anyway fold the ½ into that multiplication."""
    if FAST:
        t = tl.inline_asm_elementwise(
            "tanh.approx.f32 $0, $1;", "=f,f", [half], dtype=tl.float32, is_pure=True, pack=1
        )
        return half + half * t
    else:
        return 2.0 * half * tl.sigmoid(2.0 * half)


@triton.jit
def _attend_block(
    acc,
    q,
    k_ptrs,
    v_ptrs,
    key_mask,
    rows,
    cols,
    half_scale,
    CAUSAL: tl.constexpr,
    FAST_SILU: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """acc += SiLU(q·kᵀ·2·half_scale) · v for one key block (causally masked when CAUSAL)."""
    k = tl.load(k_ptrs, mask=key_mask, other=0.0)
    v = tl.load(v_ptrs, mask=key_mask, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION)
    w = silu_of_half(s * half_scale, FAST_SILU)
    if CAUSAL:
        w = tl.where(cols[None, :] <= rows[:, None], w, 0.0)
    return tl.dot(w.to(v.dtype), v, acc, input_precision=PRECISION)


# Sizes that vary from call to call are not specialised on (each value class would be another compile); the
# strides are, since their divisibility by 16 is what lets loads be 16 bytes wide.
@triton.jit(do_not_specialize=["heads", "max_seq_len", "length_bucket"])
def hstu_attention_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    out_ptr,
    offsets_ptr,
    stride_qt,
    stride_qh,
    stride_kt,
    stride_kh,
    stride_vt,
    stride_vh,
    stride_ot,
    stride_oh,
    heads,
    max_seq_len,
    scale,
    length_bucket,  # only an autotune key
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    FAST_SILU: tl.constexpr,
    UPCAST: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """out[t, h] = Σ_{j ≤ i} SiLU(q_i·k_j·scale) v_j / (i + 1), for row t = offsets[b] + i of user b."""
    pid = tl.program_id(0)
    num_m_blocks = tl.cdiv(max_seq_len, BLOCK_M)
    m_block = num_m_blocks - 1 - pid % num_m_blocks
    bh = pid // num_m_blocks
    b = bh // heads
    h = bh % heads
    start = tl.load(offsets_ptr + b).to(tl.int64)
    length = (tl.load(offsets_ptr + b + 1) - tl.load(offsets_ptr + b)).to(tl.int32)
    m0 = m_block * BLOCK_M
    if m0 >= length:
        return
    rows = m0 + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < length
    # All true (folded away) when HEAD_DIM == BLOCK_D: an unmasked head dim keeps the loads 16 bytes wide.
    dim_ok = (dims < HEAD_DIM) | (HEAD_DIM == BLOCK_D)
    q = tl.load(
        q_ptr + (start + rows)[:, None] * stride_qt + h * stride_qh + dims[None, :],
        mask=row_ok[:, None] & dim_ok[None, :],
        other=0.0,
    )
    if UPCAST:  # the interpreter's 16-bit dot is not exact; fp32 products of 16-bit inputs are
        q = q.to(tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    half_scale = 0.5 * scale  # SiLU's ½ folded into the score scaling: one multiply per score, not two
    cols = tl.arange(0, BLOCK_N)
    k_base = k_ptr + h * stride_kh + dims[None, :]
    v_base = v_ptr + h * stride_vh + dims[None, :]
    # Key blocks wholly before the diagonal: every key is visible to every query row, no causal mask.
    for n0 in range(0, m0, BLOCK_N):
        keys = start + n0 + cols
        acc = _attend_block(
            acc,
            q,
            k_base + keys[:, None] * stride_kt,
            v_base + keys[:, None] * stride_vt,
            dim_ok[None, :],
            rows,
            n0 + cols,
            half_scale,
            False,
            FAST_SILU,
            UPCAST,
            PRECISION,
        )
    # The diagonal: keys m0 .. min(m0 + BLOCK_M, length) − 1, masked j ≤ i (and j < length).
    for n0 in range(m0, tl.minimum(m0 + BLOCK_M, length), BLOCK_N):
        keys = start + n0 + cols
        key_mask = ((n0 + cols) < length)[:, None] & dim_ok[None, :]
        acc = _attend_block(
            acc,
            q,
            k_base + keys[:, None] * stride_kt,
            v_base + keys[:, None] * stride_vt,
            key_mask,
            rows,
            n0 + cols,
            half_scale,
            True,
            FAST_SILU,
            UPCAST,
            PRECISION,
        )
    out = acc / (rows + 1).to(tl.float32)[:, None]
    tl.store(
        out_ptr + (start + rows)[:, None] * stride_ot + h * stride_oh + dims[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None] & dim_ok[None, :],
    )


hstu_attention_autotuned = triton.autotune(configs=CONFIGS, key=["length_bucket", "HEAD_DIM", "FAST_SILU"])(
    hstu_attention_kernel
)


def length_bucket(max_seq_len: int) -> int:
    """The autotune key for a longest history: two buckets, so fuzzing does not re-tune per example."""
    return 0 if max_seq_len <= 256 else 1


def launch_params(q: torch.Tensor) -> dict:
    """Compile-time parameters for q: head-dim tile (≥ 16, the GPU's smallest dot), SiLU form, dot
    precision."""
    head_dim = q.shape[2]
    params = {"HEAD_DIM": head_dim, "BLOCK_D": max(16, triton.next_power_of_2(head_dim))}
    if interpreting():
        params.update(FAST_SILU=False, UPCAST=True, PRECISION="ieee")
    elif q.dtype == torch.float32:
        # tf32x3 keeps fp32 accuracy on the tensor cores; the reference is IEEE fp32.
        params.update(FAST_SILU=False, UPCAST=False, PRECISION="tf32x3")
    else:
        params.update(FAST_SILU=True, UPCAST=False, PRECISION="tf32")  # precision is moot for 16-bit inputs
    return params


def hstu_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    offsets: torch.Tensor,
    *,
    max_seq_len: int,
    config: dict | None = None,
) -> torch.Tensor:
    """Triton implementation of ``kernels.hstu_attention.hstu_attention`` (same contract).

    ``max_seq_len`` must be at least the longest row (it sizes the grid; programs past a row's end exit).
    ``config`` (e.g. {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2}, optionally with
    FAST_SILU) bypasses the autotuner: for tests that check every tuned config, and for sweeps.
    """
    check_device("hstu_attention", q, k, v, offsets)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    rows = offsets.numel() - 1
    heads = q.shape[1]
    if rows <= 0 or q.shape[0] == 0 or max_seq_len <= 0:
        return out
    q, k, v = (t if t.stride(2) == 1 else t.contiguous() for t in (q, k, v))
    params = launch_params(q)
    scale = 1.0 / math.sqrt(q.shape[2])
    args = (
        q,
        k,
        v,
        out,
        offsets,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        out.stride(0),
        out.stride(1),
        heads,
        max_seq_len,
        scale,
        length_bucket(max_seq_len),
    )
    if config is None:

        def grid(meta):
            return (triton.cdiv(max_seq_len, meta["BLOCK_M"]) * rows * heads,)

        hstu_attention_autotuned[grid](*args, **params)
    else:
        config = dict(config)
        params.update({k: config.pop(k) for k in ("FAST_SILU",) if k in config})
        grid = (triton.cdiv(max_seq_len, config["BLOCK_M"]) * rows * heads,)
        hstu_attention_kernel[grid](*args, **params, **config)
    return out
