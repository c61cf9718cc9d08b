"""Model presets: YAML → frozen ModelConfig."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import yaml

from genrec_bench.models.embedding.spec import EmbeddingError, EmbeddingSpec, spec_from_mapping

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


class PresetError(ValueError):
    """An unknown preset name, or a malformed models/presets.yaml; the message names the file and preset.

    models/ is a library of its own (the harness imports it, never the reverse), so its errors are its own;
    the harness reports them as one line like its own errors."""


ATTENTIONS = ("hstu", "softmax")
LENGTH_DISTRIBUTIONS = ("lognormal", "uniform", "fixed")


@dataclass(frozen=True)
class WorkloadConfig:
    """How synthetic users are drawn: Zipf item popularity and jagged history lengths.

    lengths: `lognormal` (median half the sequence, spread `length_sigma`), `uniform` in
    [min_length, seq_len], or `fixed` (every history full). Two kinds of user a plain draw rarely or never
    gives, each a share of the batch, so the edges of the input contract are exercised on purpose:
    `empty_share` users with no history at all (cold start), and `overlong_share` users whose raw history is
    longer than the window (up to twice): the model sees their latest items, and a served model's preprocess
    must cut them the same way.
    """

    zipf_alpha: float = 1.1
    lengths: str = "lognormal"
    length_sigma: float = 0.6
    min_length: int = 1
    empty_share: float = 0.0
    overlong_share: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    name: str
    num_items: int
    d_model: int
    num_layers: int
    num_heads: int
    max_seq_len: int
    attention: str
    context_vocab: tuple[int, ...]
    num_candidates: int
    mlp_hidden: tuple[int, ...]
    top_k: int
    seed: int = 0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    # Where the item table lives and how a cache of it behaves (matrices/embedding.py); cells may override it.
    embedding: EmbeddingSpec = field(default_factory=EmbeddingSpec)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def num_features(self) -> int:
        """Feature vectors entering the rank interaction: user state, pooled history, contexts, candidate."""
        return 3 + len(self.context_vocab)

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the weights or graph (cache keys use it). The embedding
        placement changes neither (exports and servers hold the whole table on their device), so it is left
        out and existing fingerprints stay what they were."""
        fields = asdict(self)
        fields.pop("embedding")
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _validate(cfg: ModelConfig) -> ModelConfig:
    problems = []
    if cfg.attention not in ATTENTIONS:
        problems.append(f"attention={cfg.attention!r} is not one of {ATTENTIONS}")
    if cfg.d_model % cfg.num_heads:
        problems.append(f"d_model={cfg.d_model} is not divisible by num_heads={cfg.num_heads}")
    if cfg.top_k > cfg.num_items - 1:
        problems.append(f"top_k={cfg.top_k} is larger than the catalogue ({cfg.num_items - 1} items)")
    if cfg.workload.lengths not in LENGTH_DISTRIBUTIONS:
        problems.append(f"workload.lengths={cfg.workload.lengths!r} is not one of {LENGTH_DISTRIBUTIONS}")
    work = cfg.workload
    if work.min_length < 0:
        problems.append(f"workload.min_length={work.min_length} must be at least 0")
    for name in ("empty_share", "overlong_share"):
        share = getattr(work, name)
        if not 0 <= share <= 1:
            problems.append(f"workload.{name}={share} must be a share between 0 and 1")
    if work.empty_share + work.overlong_share > 1:
        problems.append("workload.empty_share + overlong_share must not exceed 1")
    if problems:
        raise PresetError(f"{PRESETS_FILE}: preset {cfg.name}: " + "; ".join(problems))
    return cfg


@cache
def presets() -> dict[str, ModelConfig]:
    """Every preset in models/presets.yaml, by name."""
    raw = yaml.safe_load(
        PRESETS_FILE.read_text(encoding="utf-8")
    )  # not the locale's (ASCII in the Triton stub)
    out = {}
    for name, spec in raw.items():
        spec = dict(spec)
        spec["workload"] = WorkloadConfig(**spec.get("workload", {}))
        try:
            spec["embedding"] = spec_from_mapping(spec.get("embedding"), f"{PRESETS_FILE}: preset {name}")
        except EmbeddingError as err:
            raise PresetError(str(err)) from None
        spec["context_vocab"] = tuple(spec["context_vocab"])
        spec["mlp_hidden"] = tuple(spec["mlp_hidden"])
        out[name] = _validate(ModelConfig(name=name, **spec))
    return out


def preset(name: str) -> ModelConfig:
    """One preset by name; an unknown name lists the ones there are."""
    table = presets()
    if name not in table:
        raise PresetError(f"unknown model preset {name!r}; presets: {', '.join(table)}")
    return table[name]
