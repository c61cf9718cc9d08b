"""Order-preserving int64 keys of (score, item) for the catalogue top-k kernels: the fp32 score's bits made
monotone in the high word, 2^31 − 1 − item in the low word, so one integer order ranks by score and breaks
ties towards the lower item id, and every item has a distinct key."""

from __future__ import annotations

import triton
import triton.language as tl

# Globals a kernel reads must be constexpr.
MIN_KEY = tl.constexpr(-(2**63))  # below every real key: "nothing"
MAX_KEY = tl.constexpr(2**63 - 1)  # above every real key


@triton.jit
def pack_keys(scores, items):
    """Order-preserving int64 keys of fp32 scores and int32 item ids (same shapes)."""
    bits = scores.to(tl.int32, bitcast=True)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats: flip the magnitude bits
    low = (2147483647 - items).to(tl.int64)  # 2^31 − 1 − item: lower ids rank first
    return (ordered.to(tl.int64) << 32) | low


@triton.jit
def key_scores(keys):
    """fp32 score of int64 keys (the inverse of the high word of ``pack_keys``)."""
    high = (keys >> 32).to(tl.int32)
    return (high ^ ((high >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)


@triton.jit
def key_items(keys):
    return 2147483647 - (keys & 0x7FFFFFFF).to(tl.int32)
