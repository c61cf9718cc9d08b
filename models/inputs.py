"""From drawn users to a phase's graph inputs, in the order PHASE_INPUTS names them."""

from __future__ import annotations

import torch

from genrec_bench.models.recommender import PHASE_INPUTS, GenerativeRecommender


@torch.inference_mode()
def phase_inputs(
    model: GenerativeRecommender,
    phase: str,
    drawn: dict[str, torch.Tensor],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple:
    """Graph inputs for `phase` on `device`. Decode's KV cache is built here by `model` itself in `dtype`
    (outside any timed region): a decode cell times one step on a cache its own precision produced."""
    moved = {k: v.to(device) for k, v in drawn.items()}
    if phase == "decode":
        moved["k_cache"], moved["v_cache"] = model.build_cache(moved["ids"], moved["lengths"])
        moved["k_cache"], moved["v_cache"] = moved["k_cache"].to(dtype), moved["v_cache"].to(dtype)
    return tuple(moved[name] for name in PHASE_INPUTS[phase])
