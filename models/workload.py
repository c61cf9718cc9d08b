"""Synthetic users: Zipf-popular items, jagged history lengths, seeded and reproducible.

Returned as padded CPU tensors + lengths: what every backend starts from, so the oracle's reference and the
cell under test see identical inputs. `device=` draws on another device with that device's generator (a
different stream from the CPU's, of the same law): how a cell makes fresh traffic for its cache without the
host becoming the bottleneck (inverse-CDF lookups into a table kept on that device; at 20M items a CPU core
draws ~5M ids/s, an H100 hundreds of millions).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from models.config import ModelConfig, WorkloadConfig


@lru_cache(maxsize=8)
def _zipf_table(num_items: int, alpha: float, seed: int, device: str = "cpu"):
    """CDF over popularity ranks and the rank → item-id permutation (popular items are not the low ids)."""
    if device != "cpu":
        return tuple(t.to(device) for t in _zipf_table(num_items, alpha, seed))
    ranks = torch.arange(1, num_items, dtype=torch.float64)
    cdf = torch.cumsum(ranks.pow(-alpha), 0)
    cdf /= cdf[-1].clone()
    perm = torch.randperm(num_items - 1, generator=torch.Generator().manual_seed(seed)) + 1
    return cdf, perm


def zipf_items(cfg: ModelConfig, shape, gen: torch.Generator) -> torch.Tensor:
    """Item ids in 1..num_items-1 drawn by Zipf popularity (id 0 is padding), on the generator's device."""
    cdf, perm = _zipf_table(cfg.num_items, cfg.workload.zipf_alpha, cfg.seed, str(gen.device))
    u = torch.rand(shape, generator=gen, dtype=torch.float64, device=gen.device)
    rank = torch.searchsorted(cdf, u).clamp(max=cfg.num_items - 2)
    return perm[rank]


def history_lengths(work: WorkloadConfig, batch: int, max_len: int, gen: torch.Generator) -> torch.Tensor:
    """Jagged lengths in [min_length, max_len] from the workload's distribution, on the generator's device."""
    low, device = min(work.min_length, max_len), gen.device
    if work.lengths == "fixed":
        return torch.full((batch,), max_len, dtype=torch.int64, device=device)
    if work.lengths == "uniform":
        return torch.randint(low, max_len + 1, (batch,), generator=gen, device=device)
    # lognormal with its median at half the window: most users short, a long tail of heavy users.
    median = max(low, max_len / 2)
    raw = torch.exp(torch.randn(batch, generator=gen, dtype=torch.float64, device=device) * work.length_sigma)
    return (raw * median).round().clamp(low, max_len).to(torch.int64)


def draw(cfg: ModelConfig, phase: str, batch: int, seq_len: int, seed: int = 0,
         device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Inputs of one cell: `ids` [B, S] right-padded, `lengths` [B]; decode adds `new_ids` [B] (and leaves room
    for it: lengths ≤ S-1); rank adds `context` [B, n_ctx] and `candidates` [B, C]. On `device`."""
    if seq_len > cfg.max_seq_len:
        raise ValueError(f"seq_len={seq_len} exceeds preset {cfg.name}'s max_seq_len={cfg.max_seq_len}")
    if phase == "decode" and seq_len < 2:
        raise ValueError(f"decode needs seq_len >= 2 (a history plus the new item), got {seq_len}")
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    window = seq_len - 1 if phase == "decode" else seq_len
    lengths = history_lengths(cfg.workload, batch, window, gen)
    ids = zipf_items(cfg, (batch, seq_len), gen)
    ids = ids.masked_fill(torch.arange(seq_len, device=device).unsqueeze(0) >= lengths.unsqueeze(1), 0)
    out = {"ids": ids, "lengths": lengths}
    if phase == "decode":
        out["new_ids"] = zipf_items(cfg, (batch,), gen)
    if phase == "rank":
        out["context"] = torch.stack(
            [torch.randint(0, v, (batch,), generator=gen, device=device) for v in cfg.context_vocab], dim=1)
        out["candidates"] = zipf_items(cfg, (batch, cfg.num_candidates), gen)
    return out
