"""The generative recommender, its presets and its synthetic workload."""

from genrec_bench.models.config import ModelConfig, WorkloadConfig, preset, presets
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.recommender import PHASE_INPUTS, PHASE_OUTPUTS, GenerativeRecommender, PhaseModule
from genrec_bench.models.workload import draw


def build_model(name_or_cfg, kernel: str = "torch") -> GenerativeRecommender:
    """A preset's model in fp32 on CPU, seeded: the same name always gives the same weights."""
    cfg = preset(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
    return GenerativeRecommender(cfg, kernel=kernel)


__all__ = [
    "ModelConfig",
    "WorkloadConfig",
    "preset",
    "presets",
    "phase_inputs",
    "PHASE_INPUTS",
    "PHASE_OUTPUTS",
    "GenerativeRecommender",
    "PhaseModule",
    "draw",
    "build_model",
]
