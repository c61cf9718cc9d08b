"""Matrix YAML → validated, frozen `Matrix`; every mistake is one MatrixError naming file, line and field.

The loader knows nothing of the backends or model presets it validates against: the caller (the pytest plugin)
passes what exists, so matrices/ stays the first stage of the one-way data flow.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from genrec_bench.matrices.cells import (
    AXES,
    DEFAULT_EMBEDDING,
    DEFAULT_KERNEL,
    DEFAULT_MODE,
    DEFAULT_SCENARIO,
    PHASES,
    PRECISIONS,
    SCENARIOS,
    Cell,
)
from genrec_bench.matrices.errors import MatrixError
from genrec_bench.matrices.yaml_lines import LineDict, LineList, load_yaml

SIZE_AXES = ("batch", "seq_len")
# The scenario axis spells the per-call cell (Cell.scenario == "") as `none`.
NO_SCENARIO = "none"


@dataclass(frozen=True)
class Timing:
    """How each cell is timed: warm-up rounds, then `rounds` timed calls, fewer if they would pass max_time_s.
    `timeout_s` bounds a whole cell (prepare, oracle, timing, checks) when cells run in isolated workers."""

    warmup_rounds: int = 3
    rounds: int = 30
    min_rounds: int = 5
    max_time_s: float = 5.0
    timeout_s: float = 600.0


# Upper bounds of what a matrix may ask for: far above any real use, low enough that a typo (an extra zero or
# three) is a one-line error instead of an hour-long hang or an allocation failure.
BOUNDS = {
    "warmup_rounds": 10_000,
    "rounds": 100_000,
    "min_rounds": 100_000,
    "max_time_s": 3600.0,
    "timeout_s": 86_400.0,
    "batch": 65_536,
    "seq_len": 65_536,
}
MAX_CELLS = 100_000
# A number in exponent notation that YAML 1.1 reads as text: `2e-5` (no dot), `2.5e5` (no sign).
_EXPONENT_TEXT = re.compile(r"[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+")
ISOLATIONS = ("none", "worker")


@dataclass(frozen=True)
class Rule:
    """An include or exclude rule: axis → allowed values, and the reason a reader sees."""

    match: Mapping[str, tuple]
    reason: str
    line: int

    def matches(self, cell: Cell) -> bool:
        return all(getattr(cell, axis) in values for axis, values in self.match.items())


@dataclass(frozen=True)
class Known:
    """What exists to validate against: backend name → its modes, model presets, kernels."""

    backends: Mapping[str, tuple[str, ...]]
    models: tuple[str, ...]
    kernels: tuple[str, ...] = (DEFAULT_KERNEL,)


@dataclass(frozen=True)
class Matrix:
    path: str
    name: str
    description: str
    axes: Mapping[str, tuple]
    include: tuple[Rule, ...]
    exclude: tuple[Rule, ...]
    timing: Timing
    tolerance: Mapping[str, Mapping[str, Any]]
    sections: Mapping[str, Any] = field(default_factory=dict)
    isolation: str = "none"
    warnings: tuple[str, ...] = ()

    def cells(self, known: Known) -> list[tuple[Cell, str | None]]:
        """Every cell with its exclusion reason (None when it runs), in matrix order, without duplicates."""
        out: dict[Cell, str | None] = {}
        for cell in _product(self.axes, known):
            out.setdefault(cell, next((r.reason for r in self.exclude if r.matches(cell)), None))
        for rule in self.include:
            axes = {**self.axes, **rule.match}
            for cell in _product(axes, known):
                out[cell] = None  # an include wins over an exclude: it was asked for by name
        return list(out.items())


# Cells that share inputs and a reference (model, phase, shape) are generated next to each other, so the
# oracle's fp32 reference is computed once for all backends, modes and precisions of a shape.
RUN_ORDER = (
    "model",
    "phase",
    "seq_len",
    "batch",
    "kernel",
    "backend",
    "mode",
    "precision",
    "embedding",
    "scenario",
)


def _product(axes: Mapping[str, tuple], known: Known):
    for values in itertools.product(*(axes[a] for a in RUN_ORDER)):
        cell = Cell(**dict(zip(RUN_ORDER, values)))
        # A mode only applies to backends that have it (ORT has no `compile`): those pairs are not cells.
        if cell.mode in known.backends.get(cell.backend, ()):
            yield cell


# --------------------------------------------------------------------------------------------- validation

TOP_LEVEL = ("name", "description", "axes", "include", "exclude", "timing", "tolerance", "isolation")
TOLERANCE_FIELDS = ("max_abs_err", "max_rel_err", "topk_agreement", "max_bias")
# Extra top-level sections other components parse (e.g. `serving:`): name → parser(path, node) → value.
SECTION_PARSERS: dict[str, Callable[[str, Any], Any]] = {}
# Axes whose values another module knows how to check (e.g. `embedding` labels): axis → value → problem |
# None.
AXIS_CHECKS: dict[str, Callable[[Any], str | None]] = {}


def load_matrix(path: str, known: Known) -> Matrix:
    """Read and validate one matrix file."""
    doc = load_yaml(path)
    if not isinstance(doc, LineDict):
        raise MatrixError(
            path, getattr(doc, "line", 1), "matrix", "the top level must be a mapping with `axes:`"
        )
    _no_unknown_keys(path, doc, TOP_LEVEL + tuple(SECTION_PARSERS), "")
    if "axes" not in doc:
        raise MatrixError(
            path,
            doc.line,
            "axes",
            "missing; add `axes:` with model, backend, precision, batch, seq_len and phase lists",
        )
    axes = _axes(path, doc["axes"], known)
    include, exclude = tuple(_rules(path, doc, "include", known)), tuple(_rules(path, doc, "exclude", known))
    _bounded_product(path, doc, axes, include)
    isolation = _string(path, doc, "isolation", default="none")
    if isolation not in ISOLATIONS:
        raise MatrixError(
            path,
            doc.lines["isolation"],
            "isolation",
            f"unknown isolation {isolation!r}; choose one of: {', '.join(ISOLATIONS)}",
        )
    matrix = Matrix(
        path=str(path),
        name=_string(path, doc, "name", default=str(path)),
        description=_string(path, doc, "description", default=""),
        axes=axes,
        include=include,
        exclude=exclude,
        timing=_timing(path, doc.get("timing"), doc.lines.get("timing", doc.line)),
        tolerance=_tolerance(path, doc.get("tolerance"), doc.lines.get("tolerance", doc.line)),
        sections={k: _section(path, doc, k, parse) for k, parse in SECTION_PARSERS.items() if k in doc},
        isolation=isolation,
    )
    cells = matrix.cells(known)
    if not cells:
        raise MatrixError(
            path,
            doc.lines["axes"],
            "axes",
            "the axes and rules give no cell (every (backend, "
            "mode) pair is one the backend lacks); check them",
        )
    return dataclasses.replace(matrix, warnings=_idle_rules(matrix, known))


def _bounded_product(path: str, doc: LineDict, axes: Mapping[str, tuple], include: tuple[Rule, ...]) -> None:
    """Refuse a matrix whose cells would number more than MAX_CELLS, counted before anything is expanded."""
    count = math.prod(len(v) for v in axes.values())
    count += sum(math.prod(len(rule.match.get(a, axes[a])) for a in axes) for rule in include)
    if count > MAX_CELLS:
        raise MatrixError(
            path,
            doc.lines["axes"],
            "axes",
            f"the axes and include rules make up to {count:,} "
            f"cells, more than {MAX_CELLS:,}; split the matrix",
        )


def _idle_rules(matrix: Matrix, known: Known) -> tuple[str, ...]:
    """Rules that change nothing: an exclude matching no cell of the axes, an include adding no cell."""
    product = set(_product(matrix.axes, known))
    out = []
    for i, rule in enumerate(matrix.exclude):
        if not any(rule.matches(cell) for cell in product):
            out.append(
                f"{matrix.path}:{rule.line}: exclude[{i}] matches no cell of the axes; it does nothing"
            )
    for i, rule in enumerate(matrix.include):
        added = set(_product({**matrix.axes, **rule.match}, known)) - product
        excluded = {c for c in product if any(r.matches(c) for r in matrix.exclude)}
        if not (added or set(_product({**matrix.axes, **rule.match}, known)) & excluded):
            out.append(f"{matrix.path}:{rule.line}: include[{i}] adds no cell the axes do not already have")
    return tuple(out)


def _section(path: str, doc: LineDict, key: str, parse: Callable[[str, Any], Any]) -> Any:
    try:
        return parse(path, doc[key])
    except MatrixError as err:
        if err.line is not None:
            raise
        # A scalar in place of the section's mapping carries no line of its own: its key's line is where it
        # is.
        raise MatrixError(path, doc.lines[key], err.field, err.message) from None


def _no_unknown_keys(path: str, node: LineDict, allowed: tuple, prefix: str) -> None:
    for key in node:
        if key not in allowed:
            raise MatrixError(
                path,
                node.lines[key],
                prefix + str(key),
                f"unknown key; expected one of: {', '.join(allowed)}",
            )


def _string(path, doc, key, default):
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise MatrixError(path, doc.lines[key], key, f"must be a string, got {value!r}")
    return value


def _axes(path: str, node: Any, known: Known) -> dict[str, tuple]:
    if not isinstance(node, LineDict):
        raise MatrixError(path, getattr(node, "line", None), "axes", "must be a mapping of axis name → list")
    _no_unknown_keys(path, node, AXES, "axes.")
    axes: dict[str, tuple] = {
        "mode": (DEFAULT_MODE,),
        "kernel": (DEFAULT_KERNEL,),
        "embedding": (DEFAULT_EMBEDDING,),
        "scenario": (DEFAULT_SCENARIO,),
    }
    for axis in AXES:
        if axis not in node:
            if axis in axes:
                continue
            raise MatrixError(
                path, node.line, f"axes.{axis}", f"missing; add `{axis}: [...]` with at least one value"
            )
        axes[axis] = _axis_values(path, node, axis, known, f"axes.{axis}", allow_scalar=False)
    return axes


def _axis_values(path: str, node: LineDict, axis: str, known: Known, where: str, allow_scalar: bool) -> tuple:
    raw, line = node[axis], node.lines[axis]
    if isinstance(raw, LineList):
        items, lines = list(raw), raw.lines
    elif allow_scalar and not isinstance(raw, (LineDict, LineList)):
        items, lines = [raw], [line]
    else:
        raise MatrixError(path, line, where, f"must be a list of values, e.g. `{axis}: [{_example(axis)}]`")
    if not items:
        raise MatrixError(path, line, where, f"is empty; give at least one value, e.g. [{_example(axis)}]")
    seen = set()
    for i, (value, item_line) in enumerate(zip(items, lines)):
        _check_value(
            path,
            item_line,
            f"{where}[{i}]" if len(items) > 1 or not allow_scalar else where,
            axis,
            value,
            known,
        )
        if value in seen:
            raise MatrixError(path, item_line, f"{where}[{i}]", f"{value!r} is listed twice; list it once")
        seen.add(value)
    if axis == "scenario":
        return tuple(DEFAULT_SCENARIO if v == NO_SCENARIO else v for v in items)
    return tuple(items)


def _example(axis: str) -> str:
    return {
        "batch": "1, 8",
        "seq_len": "32",
        "precision": "fp32",
        "phase": "prefill",
        "backend": "torch-cpu",
        "model": "tiny",
        "mode": "eager",
        "kernel": "torch",
        "embedding": "device, cached-10pct",
        "scenario": "none, server",
    }[axis]


def _check_value(path, line, where, axis, value, known: Known) -> None:
    if axis in SIZE_AXES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MatrixError(path, line, where, f"must be a positive integer, got {value!r}")
        if value <= 0:
            raise MatrixError(path, line, where, f"must be a positive integer, got {value}")
        if value > BOUNDS[axis]:
            raise MatrixError(
                path, line, where, f"{value:,} is more than the {BOUNDS[axis]:,} a cell may ask for; lower it"
            )
        return
    if axis in AXIS_CHECKS:
        problem = AXIS_CHECKS[axis](value)
        if problem:
            raise MatrixError(path, line, where, problem)
        return
    choices = {
        "model": known.models,
        "backend": tuple(known.backends),
        "precision": PRECISIONS,
        "phase": PHASES,
        "kernel": known.kernels,
        "mode": tuple(sorted({m for modes in known.backends.values() for m in modes})),
        "scenario": (NO_SCENARIO, *SCENARIOS),
    }[axis]
    if not isinstance(value, str):
        raise MatrixError(path, line, where, f"must be a string, got {value!r}; one of: {', '.join(choices)}")
    if value not in choices:
        raise MatrixError(path, line, where, f"unknown {axis} {value!r}; choose one of: {', '.join(choices)}")


def _rules(path: str, doc: LineDict, key: str, known: Known) -> list[Rule]:
    if key not in doc:
        return []
    node = doc[key]
    if not isinstance(node, LineList):
        raise MatrixError(path, doc.lines[key], key, "must be a list of rules, each a mapping with `reason:`")
    rules = []
    for i, entry in enumerate(node):
        where = f"{key}[{i}]"
        if not isinstance(entry, LineDict):
            raise MatrixError(path, node.lines[i], where, "must be a mapping of axis values plus `reason:`")
        _no_unknown_keys(path, entry, AXES + ("reason",), where + ".")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise MatrixError(
                path,
                entry.lines.get("reason", entry.line),
                where + ".reason",
                "every rule needs a non-empty `reason:` saying why",
            )
        match = {
            axis: _axis_values(path, entry, axis, known, f"{where}.{axis}", allow_scalar=True)
            for axis in AXES
            if axis in entry
        }
        if not match:
            raise MatrixError(
                path, entry.line, where, "names no axis; add at least one, e.g. `backend: torch-cpu`"
            )
        rules.append(Rule(match=match, reason=reason.strip(), line=entry.line))
    return rules


def _number(
    path,
    node: LineDict,
    key,
    where,
    *,
    integer: bool,
    minimum: float,
    strict: bool = False,
    maximum: float | None = None,
):
    value, line = node[key], node.lines[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        hint = ""
        if isinstance(value, str) and _EXPONENT_TEXT.fullmatch(value):
            # YAML 1.1 reads an exponent without a dot (2e-5) as text, so it reaches here as a string.
            mantissa, exponent = re.split("[eE]", value)
            mantissa += "" if "." in mantissa else ".0"
            exponent = exponent if exponent[0] in "+-" else "+" + exponent
            hint = (
                "; write it out in decimal digits"
                if integer
                else f" (YAML 1.1 reads a number as one only with a dot and a signed exponent); write "
                f"{mantissa}e{exponent}"
            )
        raise MatrixError(path, line, where, f"must be {kind}, got {value!r}{hint}")
    if not math.isfinite(value):
        raise MatrixError(path, line, where, f"must be a finite number, got {value}")
    if value < minimum or (strict and value == minimum):
        bound = f"greater than {minimum}" if strict else f"at least {minimum}"
        raise MatrixError(path, line, where, f"must be {bound}, got {value}")
    if maximum is not None and value > maximum:
        raise MatrixError(path, line, where, f"{value:,} is more than the {maximum:,} allowed; lower it")
    return value


def _timing(path: str, node: Any, line: int) -> Timing:
    if node is None:
        return Timing()
    if not isinstance(node, LineDict):
        raise MatrixError(path, line, "timing", "must be a mapping, e.g. `timing: {rounds: 20}`")
    _no_unknown_keys(
        path, node, ("warmup_rounds", "rounds", "min_rounds", "max_time_s", "timeout_s"), "timing."
    )
    values = {}
    for key in node:
        seconds = key.endswith("_s")
        values[key] = _number(
            path,
            node,
            key,
            f"timing.{key}",
            integer=not seconds,
            minimum=0 if seconds or key == "warmup_rounds" else 1,
            strict=seconds,
            maximum=BOUNDS[key],
        )
    timing = Timing(**values)
    if timing.min_rounds > timing.rounds:
        raise MatrixError(
            path,
            node.line,
            "timing.min_rounds",
            f"min_rounds={timing.min_rounds} is larger than rounds={timing.rounds}; lower it",
        )
    return timing


def _tolerance(path: str, node: Any, line: int) -> dict[str, dict[str, Any]]:
    """precision → {limit: value, phase: {limit: value}}: a precision's limits apply to every phase, a phase's
    under it to that phase only (the oracle's table is per precision and phase)."""
    if node is None:
        return {}
    if not isinstance(node, LineDict):
        raise MatrixError(
            path, line, "tolerance", "must map a precision to limits, e.g. `fp16: {max_rel_err: 0.02}`"
        )
    out = {}
    for precision, limits in node.items():
        where = f"tolerance.{precision}"
        if precision not in PRECISIONS:
            raise MatrixError(
                path,
                node.lines[precision],
                where,
                f"unknown precision; choose one of: {', '.join(PRECISIONS)}",
            )
        out[precision] = _limits(path, limits, node.lines[precision], where, phases=True)
    return out


def _limits(path: str, limits: Any, line: int, where: str, *, phases: bool) -> dict[str, Any]:
    if not isinstance(limits, LineDict):
        raise MatrixError(path, line, where, "must be a mapping, e.g. `{max_rel_err: 0.02}`")
    _no_unknown_keys(path, limits, TOLERANCE_FIELDS + (PHASES if phases else ()), where + ".")
    out: dict[str, Any] = {}
    for key in limits:
        if key in PHASES:
            out[key] = _limits(path, limits[key], limits.lines[key], f"{where}.{key}", phases=False)
            continue
        out[key] = float(_number(path, limits, key, f"{where}.{key}", integer=False, minimum=0))
        if key == "topk_agreement" and out[key] > 1:
            raise MatrixError(
                path, limits.lines[key], f"{where}.{key}", f"is a share between 0 and 1, got {out[key]}"
            )
    return out
