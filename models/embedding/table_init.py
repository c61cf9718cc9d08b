"""The item table's initial weights: N(0, 1/d), row 0 (padding) zero, seeded.

Tables up to PARALLEL_FROM elements keep exactly the initialisation they always had (nn.Embedding's own
normal_ then nn.init.normal_ on the global generator, inside the model's fork_rng), so existing presets keep
their weights. Larger tables (the `large` preset: 20M × 128 = 2.6G values) would take half a minute that way,
because torch's CPU normal_ runs on one thread; they are filled in chunks of CHUNK_ROWS rows, each chunk from
its own generator seeded by (seed, chunk), on a thread pool. The values depend on the seed and the chunk size
only, never on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

PARALLEL_FROM = 1 << 30
CHUNK_ROWS = 1 << 18


def item_table(num_items: int, dim: int, seed: int) -> nn.Embedding:
    """The item embedding (padding_idx 0) of a model; call inside the model's seeded fork_rng."""
    std = dim**-0.5
    if num_items * dim < PARALLEL_FROM:
        table = nn.Embedding(num_items, dim, padding_idx=0)
        nn.init.normal_(table.weight, std=std)
    else:
        table = nn.Embedding(num_items, dim, padding_idx=0, _weight=chunked_normal(num_items, dim, std, seed))
    with torch.no_grad():
        table.weight[0].zero_()
    return table


def chunked_normal(rows: int, dim: int, std: float, seed: int) -> torch.Tensor:
    """[rows, dim] fp32 N(0, std²), filled chunk by chunk in parallel, each chunk from its own generator."""
    # A normal tensor even when the caller is in inference mode (the oracle builds its model there): the
    # pool's threads do not inherit that thread-local mode, and may not update an inference tensor in place.
    with torch.inference_mode(False):
        out = torch.empty(rows, dim)

    def fill(start: int) -> None:
        gen = torch.Generator().manual_seed(chunk_seed(seed, start // CHUNK_ROWS))
        out[start : start + CHUNK_ROWS].normal_(0.0, std, generator=gen)

    # torch ops release the GIL, so the threads fill chunks at once (normal_ itself is single-threaded).
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, range(0, rows, CHUNK_ROWS)))
    return out


def chunk_seed(seed: int, chunk: int) -> int:
    """A 32-bit mix of (seed, chunk): torch's CPU generator keeps only the low 32 bits of a seed."""
    return ((seed + 1) * 0x9E3779B1 ^ (chunk + 1) * 0x85EBCA77) & 0xFFFFFFFF
