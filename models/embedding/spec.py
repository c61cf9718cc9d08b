"""Where the item table lives: the embedding spec of a model instance, its field rules and the cell labels
that set placement and budget (`device`, `host`, `cached-10pct`, `cached-512mb`, `cached-10pct-lru`).

Plain data and rules, no harness: presets (models/config.py) carry a spec, the matrix's `embedding:` section
and a cell's label override it (matrices/embedding.py parses those), models/embedding/placement.py applies it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any


class EmbeddingError(ValueError):
    """A spec, preset field or label that cannot be: one line naming the field and the fix."""


PLACEMENTS = ("device", "cached", "host")
POLICIES = ("lfu", "lru")
STORAGES = ("auto", "fp16", "fp32")
#: What the matrix section may set; placement and budget come from the cell's label so the id says them.
SECTION_FIELDS = ("policy", "ways", "storage", "warm_lookups", "warm_batches", "pool_batches")
LABEL_EXAMPLE = "device, host, cached-10pct, cached-512mb, cached-10pct-lru"
_LABEL = re.compile(
    r"^(?:(?P<plain>device|host)|cached-(?P<amount>\d+(?:\.\d+)?)(?P<unit>pct|mb))"
    r"(?:-(?P<policy>lfu|lru))?$"
)


@dataclass(frozen=True)
class EmbeddingSpec:
    """How one model instance holds its item table. Budget fields apply to `cached` only (exactly one of
    them)."""

    placement: str = "device"
    gpu_budget_mb: float | None = None
    fraction: float | None = None
    policy: str = "lfu"
    ways: int = 32
    storage: str = "auto"
    warm_lookups: int = 0
    warm_batches: int = 32
    pool_batches: int = 64

    @property
    def cold(self) -> bool:
        """No warm-up traffic: the cache starts the timed rounds empty."""
        return self.warm_lookups == 0 and self.warm_batches == 0

    def overridden(self, **changes) -> EmbeddingSpec:
        """A copy with `changes`, checked: a cell label's fields on top of the preset's and the matrix's."""
        spec = replace(self, **changes)
        problem = consistency_problem(spec)
        if problem:
            raise EmbeddingError(f"embedding: {problem}")
        return spec

    def budget_label(self) -> str:
        """`10pct` or `512mb`: the budget as a label spells it ('' unless cached)."""
        if self.placement != "cached":
            return ""
        if self.fraction is not None:
            return f"{_number_text(self.fraction * 100)}pct"
        return f"{_number_text(self.gpu_budget_mb)}mb"


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# ------------------------------------------------------------------------------------------- field rules

# field: (kind, choices or (minimum, maximum, minimum is exclusive))
_RULES: dict[str, tuple[str, Any]] = {
    "placement": ("choice", PLACEMENTS),
    "policy": ("choice", POLICIES),
    "storage": ("choice", STORAGES),
    "gpu_budget_mb": ("number", (0.0, math.inf, True)),
    "fraction": ("number", (0.0, 1.0, True)),
    "ways": ("int", (1, 1024, False)),
    "warm_lookups": ("int", (0, 10**10, False)),
    "warm_batches": ("int", (0, 100_000, False)),
    "pool_batches": ("int", (1, 100_000, False)),
}


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the field `name` (None when it is right), said with the fix."""
    if name not in _RULES:
        return f"unknown key; expected one of: {', '.join(_RULES)}"
    kind, rule = _RULES[name]
    if kind == "choice":
        if not isinstance(value, str) or value not in rule:
            return f"must be one of: {', '.join(rule)}; got {value!r}"
        return None
    integer = kind == "int"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return f"must be {'an integer' if integer else 'a number'}, got {value!r}"
    low, high, exclusive = rule
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if value < low or (exclusive and value == low) or value > high:
        lower = f"greater than {low}" if exclusive else f"at least {low}"
        upper = "" if high == math.inf else f" and at most {high}"
        return f"must be {lower}{upper}, got {value!r}"
    return None


def consistency_problem(spec: EmbeddingSpec) -> str | None:
    """Cross-field rule: `cached` needs exactly one budget; the other placements take none."""
    budgets = [name for name in ("gpu_budget_mb", "fraction") if getattr(spec, name) is not None]
    if spec.placement == "cached" and len(budgets) != 1:
        return (
            "placement cached needs exactly one budget, `fraction:` (share of the table's rows) or "
            f"`gpu_budget_mb:`; got {', '.join(budgets) or 'none'}"
        )
    if spec.placement != "cached" and budgets:
        return f"{budgets[0]} applies to placement cached only; placement is {spec.placement}"
    return None


def spec_from_mapping(raw: Any, where: str) -> EmbeddingSpec:
    """A preset's `embedding:` mapping (plain YAML) → EmbeddingSpec; a mistake is one EmbeddingError line."""
    if raw is None:
        return EmbeddingSpec()
    if not isinstance(raw, dict):
        raise EmbeddingError(
            f"{where}: embedding: must be a mapping, e.g. `embedding: {{placement: device}}`"
        )
    for key, value in raw.items():
        problem = field_problem(key, value)
        if problem:
            raise EmbeddingError(f"{where}: embedding.{key}: {problem}")
    spec = EmbeddingSpec(**{k: (float(v) if _RULES[k][0] == "number" else v) for k, v in raw.items()})
    problem = consistency_problem(spec)
    if problem:
        raise EmbeddingError(f"{where}: embedding: {problem}")
    return spec


# ----------------------------------------------------------------------------------------------- labels


def label_problem(value: Any) -> str | None:
    """Why `value` is not an embedding label (None when it is one)."""
    if not isinstance(value, str):
        return f"must be a string label, got {value!r}; e.g. {LABEL_EXAMPLE}"
    match = _LABEL.match(value)
    if not match:
        return f"unknown embedding label {value!r}; labels look like: {LABEL_EXAMPLE}"
    if match["plain"] and match["policy"]:
        return (
            f"{value!r}: a policy suffix applies to cached labels only (e.g. cached-10pct-{match['policy']})"
        )
    if match["amount"] is not None:
        amount = float(match["amount"])
        if amount <= 0 or (match["unit"] == "pct" and amount > 100):
            return f"{value!r}: the budget must be greater than 0" + (
                " and at most 100pct" if match["unit"] == "pct" else ""
            )
    return None


def label_overrides(label: str) -> dict:
    """The spec fields a cell's label sets: placement, budget and policy ({} for the empty label)."""
    if not label:
        return {}
    problem = label_problem(label)
    if problem:
        raise EmbeddingError(f"embedding: {problem}")
    match = _LABEL.match(label)
    out: dict[str, Any] = {"placement": match["plain"] or "cached"}
    if match["amount"] is not None:
        amount, in_pct = float(match["amount"]), match["unit"] == "pct"
        out["fraction"] = amount / 100 if in_pct else None
        out["gpu_budget_mb"] = None if in_pct else amount
    if match["policy"]:
        out["policy"] = match["policy"]
    return out


def resolve(preset_spec: EmbeddingSpec, section: dict | None, label: str) -> EmbeddingSpec:
    """The spec a cell runs with: preset's, then the matrix section's knobs, then the cell label's fields."""
    spec = preset_spec
    if section:
        spec = replace(spec, **section)
    overrides = label_overrides(label)
    if overrides and overrides["placement"] != "cached":
        overrides.update(gpu_budget_mb=None, fraction=None)
    return spec.overridden(**overrides) if overrides else spec


def cell_placement(preset_spec: EmbeddingSpec, label: str) -> str:
    """The placement a cell runs: its label's, or its preset's when it has none."""
    return label_overrides(label).get("placement", preset_spec.placement)
