"""Models and oracle references, built once per process: a base preset's weights take seconds to initialise."""
from __future__ import annotations

from functools import lru_cache

import torch

from genrec_bench.models import build_model, phase_inputs, preset

# The reference returns this many times the cell's k, so the oracle can see ties around the k-th item.
REFERENCE_WIDTH = 2


@lru_cache(maxsize=4)
def cached_model(name: str):
    """The preset's fp32 CPU model (kernel="torch"); cells take `.variant(kernel=...)` of it."""
    return build_model(name)


def model_for(name: str, kernel: str):
    return cached_model(name).variant(kernel=kernel)


_last: dict = {}


def reference_topk(name: str, phase: str, drawn: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The fp32 CPU torch model on the same inputs, with a wider top-k: (scores, items) [B, K].

    The last answer is kept: the matrix runs all cells of one shape in a row, and at GPU scale the CPU
    reference costs more than the cells it checks."""
    key = (name, phase, tuple((k, tuple(v.shape), hash(v.numpy().tobytes())) for k, v in sorted(drawn.items())))
    if key not in _last:
        _last.clear()
        _last[key] = _compute_reference(name, phase, drawn)
    return _last[key]


@torch.inference_mode()
def _compute_reference(name: str, phase: str, drawn: dict) -> tuple[torch.Tensor, torch.Tensor]:
    base = cached_model(name)
    cfg = preset(name)
    wide = min(cfg.num_items - 1, REFERENCE_WIDTH * cfg.top_k)
    if phase == "rank":
        wide = cfg.num_candidates
    model = base.variant(top_k=wide, kernel="torch")
    scores, items = getattr(model, phase)(*phase_inputs(model, phase, drawn))
    return scores.float(), items.long()
