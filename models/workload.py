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

from genrec_bench.models.config import ModelConfig, WorkloadConfig


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


def edge_users(work: WorkloadConfig, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the empty and the overlong users: each share of the batch rounded, at least one user when the
    share is above 0 (and the batch has room), at seeded places. Drawn only when asked for, so a plain
    workload's users stay exactly what they always were."""
    none = torch.zeros(batch, dtype=torch.bool, device=gen.device)
    if not (work.empty_share or work.overlong_share):
        return none, none.clone()
    order = torch.randperm(batch, generator=gen, device=gen.device)
    counts = [
        max(1, round(share * batch)) if share > 0 else 0 for share in (work.empty_share, work.overlong_share)
    ]
    n_empty = min(counts[0], batch)
    n_over = min(counts[1], batch - n_empty)
    empty, overlong = none.clone(), none.clone()
    empty[order[:n_empty]] = True
    overlong[order[n_empty : n_empty + n_over]] = True
    return empty, overlong


def draw(
    cfg: ModelConfig, phase: str, batch: int, seq_len: int, seed: int = 0, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Inputs of one cell: `ids` [B, S] right-padded, `lengths` [B]; decode adds `new_ids` [B] (and leaves
    room for it: lengths ≤ S-1); rank adds `context` [B, n_ctx] and `candidates` [B, C]. `raw_ids` [B, L] and
    `raw_lengths` [B] are the users' whole histories (what a served request carries): the same as ids/lengths
    except for overlong users, whose `ids` are the latest items of the window. On `device`."""
    if seq_len > cfg.max_seq_len:
        raise ValueError(f"seq_len={seq_len} exceeds preset {cfg.name}'s max_seq_len={cfg.max_seq_len}")
    if phase == "decode" and seq_len < 2:
        raise ValueError(f"decode needs seq_len >= 2 (a history plus the new item), got {seq_len}")
    work = cfg.workload
    if work.overlong_share and seq_len != cfg.max_seq_len:
        # A served model cuts histories at the preset's window; cells must see the same window to compare.
        raise ValueError(
            f"overlong histories need seq_len = {cfg.name}'s max_seq_len {cfg.max_seq_len}, got {seq_len}"
        )
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    window = seq_len - 1 if phase == "decode" else seq_len
    lengths = history_lengths(work, batch, window, gen)
    empty, overlong = edge_users(work, batch, gen)
    lengths = lengths.masked_fill(empty, 0)
    if overlong.any():
        extra = torch.randint(1, window + 1, (batch,), generator=gen, device=device)
        raw_lengths = torch.where(overlong, window + extra, lengths)
    else:
        raw_lengths = lengths
    lengths = torch.where(overlong, torch.full_like(lengths, window), lengths)
    raw_width = max(int(raw_lengths.max()), seq_len)
    raw_ids = zipf_items(cfg, (batch, raw_width), gen)
    raw_ids = raw_ids.masked_fill(
        torch.arange(raw_width, device=device).unsqueeze(0) >= raw_lengths.unsqueeze(1), 0
    )
    # The model's window holds each user's latest items: an overlong history keeps its last `window` ones.
    start = (raw_lengths - lengths).unsqueeze(1)
    window_pos = torch.arange(seq_len, device=device).unsqueeze(0)
    ids = raw_ids.gather(1, (start + window_pos).clamp(max=raw_width - 1))
    ids = ids.masked_fill(window_pos >= lengths.unsqueeze(1), 0)
    out = {"ids": ids, "lengths": lengths, "raw_ids": raw_ids, "raw_lengths": raw_lengths}
    if phase == "decode":
        out["new_ids"] = zipf_items(cfg, (batch,), gen)
    if phase == "rank":
        out["context"] = torch.stack(
            [torch.randint(0, v, (batch,), generator=gen, device=device) for v in cfg.context_vocab], dim=1
        )
        out["candidates"] = zipf_items(cfg, (batch, cfg.num_candidates), gen)
    return out
