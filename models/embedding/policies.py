"""Eviction policies as pure functions: a slot's victim key, smallest evicted first, packed into one int64.

Every slot of a cache set carries a key; a miss takes the set's unprotected way with the smallest key. Keys
are unique within a set (the way index is in the low bits), so the choice never depends on a sort's tie order
and a pure-Python model of the policy (models/embedding/reference.py) can predict it exactly.

- `lru`: (stamp, way). The stamp is the number of the last batch that used the row (batches count from 1;
  0 = empty), so empty ways go first, then the least recently used.
- `lfu`: (min(freq, FREQ_MAX), min(stamp, STAMP_MAX), way). freq counts the lookups of the row since it was
  inserted (every occurrence in a batch counts); ties — most often rows inserted by the same batch — evict the
  least recently used. Counts saturate at FREQ_MAX = 2²⁴−1; stamps at 2^(62−24−way bits)−1 (≥ 2²⁸ batches).

LFU is the default: the benchmark's traffic is stationary Zipf (independent draws from one popularity law),
for which keeping the most frequently used rows approaches the best static choice (the top rows by
popularity), while LRU also admits every one-off tail item and lets it push out a popular row. LRU is the
better choice when popularity drifts (new items, trends); the matrix can pick it per cell
(`cached-10pct-lru`).
"""

from __future__ import annotations

import torch

POLICIES = ("lfu", "lru")
FREQ_BITS = 24
FREQ_MAX = (1 << FREQ_BITS) - 1
KEY_BITS = 62  # below int64's maximum, which marks a protected way (hit by the current batch)
PROTECTED = (1 << 63) - 1


def way_bits(ways: int) -> int:
    """Bits the way index takes in a key."""
    return max(1, (ways - 1).bit_length())


def stamp_max(ways: int) -> int:
    """The largest stamp an LFU key holds apart (later stamps compare equal)."""
    return (1 << (KEY_BITS - FREQ_BITS - way_bits(ways))) - 1


def victim_keys(
    policy: str, stamp: torch.Tensor, freq: torch.Tensor, way: torch.Tensor, ways: int
) -> torch.Tensor:
    """The int64 victim key of slots with these stamps, lookup counts and way indices (all int64 tensors)."""
    shift = way_bits(ways)
    if policy == "lru":
        return (stamp << shift) | way
    if policy == "lfu":
        recency = stamp.clamp(max=stamp_max(ways))
        return (freq.clamp(max=FREQ_MAX) << (KEY_BITS - FREQ_BITS)) | (recency << shift) | way
    raise ValueError(f"unknown eviction policy {policy!r}; choose one of {POLICIES}")
