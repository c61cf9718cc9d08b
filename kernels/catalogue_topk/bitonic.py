"""Bitonic sort and merge of int64 keys along the last axis, written with reshape, max/min and join.

Why not ``tl.sort``: it exchanges partners through a generic xor-reduction, which Triton's CPU interpreter
runs element by element in Python (0.4 s per 512-key sort, most of a fuzz example's time); max/min over an
axis of two run as numpy reductions there. On the GPU both compile to the same kind of compare-exchange
network.

Each step of the network views a row as [blocks, 2, span/2d, 2, d]: the second "2" pairs element i with i + d,
the first says whether the block sorts descending (even) or ascending (odd), as bitonic sorting alternates.

Imported only by the kernels' Triton module.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _step(x, ROWS: tl.constexpr, N: tl.constexpr, SPAN: tl.constexpr, D: tl.constexpr):
    """One compare-exchange step: pairs (i, i + D) inside sequences of SPAN, direction alternating per
    SPAN."""
    if SPAN == N:  # the last phase: one bitonic sequence per row, made descending
        y = tl.reshape(x, (ROWS, N // (2 * D), 2, D))
        hi = tl.max(y, axis=2)
        lo = tl.min(y, axis=2)
        y = tl.permute(tl.join(hi, lo), (0, 1, 3, 2))
    else:
        y = tl.reshape(x, (ROWS, N // (2 * SPAN), 2, SPAN // (2 * D), 2, D))
        hi = tl.max(y, axis=4)
        lo = tl.min(y, axis=4)
        ascending = (tl.arange(0, 2) == 1)[None, None, :, None, None]
        first = tl.where(ascending, lo, hi)
        second = tl.where(ascending, hi, lo)
        y = tl.permute(tl.join(first, second), (0, 1, 2, 3, 5, 4))
    return tl.reshape(y, (ROWS, N))


@triton.jit
def sort_descending(x, ROWS: tl.constexpr, N: tl.constexpr, LOG_N: tl.constexpr):
    """Sort each row of x [ROWS, N] (N = 2^LOG_N) in descending order."""
    for phase in tl.static_range(1, LOG_N + 1):
        for j in tl.static_range(0, phase):
            x = _step(x, ROWS, N, 2**phase, 2 ** (phase - 1 - j))
    return x


@triton.jit
def merge_descending(x, ROWS: tl.constexpr, N: tl.constexpr, LOG_N: tl.constexpr):
    """Sort rows of x [ROWS, N] that are bitonic (e.g. max of a descending and an ascending run)
    descending."""
    for j in tl.static_range(0, LOG_N):
        x = _step(x, ROWS, N, N, 2 ** (LOG_N - 1 - j))
    return x


@triton.jit
def sort_rows_kernel(x_ptr, ROWS: tl.constexpr, N: tl.constexpr, LOG_N: tl.constexpr, MERGE: tl.constexpr):
    """x [ROWS, N] int64 sorted descending in place (merged, when MERGE, from bitonic rows): for the tests."""
    at = x_ptr + tl.arange(0, ROWS)[:, None] * N + tl.arange(0, N)[None, :]
    x = tl.load(at)
    if MERGE:
        tl.store(at, merge_descending(x, ROWS, N, LOG_N))
    else:
        tl.store(at, sort_descending(x, ROWS, N, LOG_N))
