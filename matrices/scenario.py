"""The matrix's `scenario:` section: how MLPerf LoadGen scenario cells (bench/loadgen/) run.

Which scenarios run is the `scenario` axis (`axes: {scenario: [server, offline]}`, or an include rule naming
`scenario: server`; `none` is the per-call cell); this section holds their settings. Every key is optional:

```yaml
scenario:
  performance_sample_count: 256   # the Query Sample Library: this many seeded users of the preset's workload
  seed: 0                         # their seed
  min_duration_ms: 2000           # each performance run's minimum length (a scenario block may override it)
  accuracy: true                  # also run LoadGen's accuracy mode and check its log with the oracle
  batcher: {max_wait_ms: 1.0, buckets: [1, 8, 32]}   # in-process backends; buckets default to powers of 2
  singlestream: {percentile: 0.9, min_query_count: 64}
  multistream: {samples_per_query: 8, percentile: 0.99, min_query_count: 662}
  server: {target_qps: 200, latency_bound_ms: 10, percentile: 0.99, min_query_count: 512,
           peak: {enabled: true, max_probes: 8, tolerance: 0.1, min_qps: 10, max_qps: 100000}}
  offline: {expected_qps: 5000}
```
Left out, `target_qps`, `expected_qps` and `expected_latency_ms` are calibrated from a few timed calls of the
cell (bench/loadgen/settings.py). The query-count defaults are what LoadGen's early stopping needs at those
percentiles, so a short run of a fast system is not INVALID for lack of queries alone. Mistakes are
MatrixErrors naming file, line and field; importing this module registers the parser in SECTION_PARSERS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from genrec_bench.matrices.errors import MatrixError
from genrec_bench.matrices.loader import SECTION_PARSERS
from genrec_bench.matrices.yaml_lines import LineDict, LineList


@dataclass(frozen=True)
class BatcherSpec:
    """In-process backends: LoadGen's samples are gathered into batches of at most the cell's `batch` users,
    waiting at most `max_wait_ms` for a batch to fill (Server only: other scenarios issue a query's samples
    together), run at the smallest bucket that holds them, padded."""

    max_wait_ms: float = 1.0
    buckets: tuple[int, ...] = ()  # () → 1, 2, 4, … up to the cell's batch


@dataclass(frozen=True)
class SingleStreamSpec:
    percentile: float = 0.9
    expected_latency_ms: float | None = None
    min_duration_ms: int | None = None
    min_query_count: int = 64


@dataclass(frozen=True)
class MultiStreamSpec:
    samples_per_query: int = 8
    percentile: float = 0.99
    expected_latency_ms: float | None = None
    min_duration_ms: int | None = None
    min_query_count: int = 662


@dataclass(frozen=True)
class PeakSpec:
    """The Server peak search: the highest target QPS LoadGen reports VALID, bracketed by growing (×growth)
    or shrinking from the first probe, then bisected until the bracket is within `tolerance`."""

    enabled: bool = False
    max_probes: int = 8
    tolerance: float = 0.1
    growth: float = 2.0
    min_qps: float = 1.0
    max_qps: float = 1e6


@dataclass(frozen=True)
class ServerSpec:
    target_qps: float | None = None
    latency_bound_ms: float = 10.0
    percentile: float = 0.99
    min_duration_ms: int | None = None
    min_query_count: int = 512
    peak: PeakSpec = field(default_factory=PeakSpec)


@dataclass(frozen=True)
class OfflineSpec:
    expected_qps: float | None = None
    min_duration_ms: int | None = None
    min_query_count: int = 1


@dataclass(frozen=True)
class ScenarioSpec:
    performance_sample_count: int = 256
    seed: int = 0
    min_duration_ms: int = 2000
    accuracy: bool = True
    batcher: BatcherSpec = field(default_factory=BatcherSpec)
    singlestream: SingleStreamSpec = field(default_factory=SingleStreamSpec)
    multistream: MultiStreamSpec = field(default_factory=MultiStreamSpec)
    server: ServerSpec = field(default_factory=ServerSpec)
    offline: OfflineSpec = field(default_factory=OfflineSpec)

    def of(self, scenario: str):
        """The settings block of one scenario, its run length filled in from the section's."""
        block = getattr(self, scenario)
        return replace(block, min_duration_ms=block.min_duration_ms or self.min_duration_ms)


def scenario_spec(matrix) -> ScenarioSpec:
    """The matrix's scenario section, or the defaults when it has none (or there is no matrix)."""
    return (matrix.sections.get("scenario") if matrix is not None else None) or ScenarioSpec()


# ----------------------------------------------------------------------------------------------- parsing

NESTED = {
    "batcher": BatcherSpec,
    "singlestream": SingleStreamSpec,
    "multistream": MultiStreamSpec,
    "server": ServerSpec,
    "offline": OfflineSpec,
    "peak": PeakSpec,
}
UNBOUNDED = math.inf
# field: (kind, lowest, highest, lowest allowed itself); kinds: int, num, bool, ints; "?" allows null.
RULES = {
    "performance_sample_count": ("int", 1, 1_000_000, True),
    "seed": ("int", 0, 2**63 - 1, True),
    "min_duration_ms": ("int", 1, 3_600_000, True),
    "min_query_count": ("int", 1, 100_000_000, True),
    "accuracy": ("bool", None, None, None),
    "enabled": ("bool", None, None, None),
    "max_wait_ms": ("num", 0, 10_000, True),
    "buckets": ("ints", 1, 65_536, True),
    "percentile": ("num", 0, 0.9999, False),
    "expected_latency_ms": ("num?", 0, 3_600_000, False),
    "samples_per_query": ("int", 1, 65_536, True),
    "target_qps": ("num?", 0, UNBOUNDED, False),
    "latency_bound_ms": ("num", 0, 3_600_000, False),
    "expected_qps": ("num?", 0, UNBOUNDED, False),
    "max_probes": ("int", 1, 64, True),
    "tolerance": ("num", 0, 0.9, False),
    "growth": ("num", 1, 100, False),
    "min_qps": ("num", 0, UNBOUNDED, False),
    "max_qps": ("num", 0, UNBOUNDED, False),
}
EXAMPLES = {
    "scenario": "scenario: {min_duration_ms: 2000}",
    "scenario.server": "server: {latency_bound_ms: 10}",
    "scenario.server.peak": "peak: {enabled: true}",
    "scenario.batcher": "batcher: {max_wait_ms: 1}",
}


def parse_scenario(path: str, node: Any) -> ScenarioSpec:
    """Validate the `scenario:` mapping into a ScenarioSpec."""
    spec = _block(path, node, ScenarioSpec, "scenario", getattr(node, "line", None))
    buckets = spec.batcher.buckets
    if list(buckets) != sorted(set(buckets)):
        raise MatrixError(
            path,
            node["batcher"].lines["buckets"],
            "scenario.batcher.buckets",
            f"must be increasing without repeats, got {list(buckets)}; e.g. [1, 8, 32]",
        )
    if spec.multistream.samples_per_query > spec.performance_sample_count:
        raise MatrixError(
            path,
            node["multistream"].lines["samples_per_query"],
            "scenario.multistream.samples_per_query",
            f"{spec.multistream.samples_per_query} is more than performance_sample_count="
            f"{spec.performance_sample_count}; lower it or draw more users",
        )
    peak = spec.server.peak
    if peak.min_qps >= peak.max_qps:
        where = node["server"]["peak"]
        raise MatrixError(
            path,
            where.lines.get("min_qps", where.line),
            "scenario.server.peak.min_qps",
            f"min_qps={peak.min_qps:g} must be below max_qps={peak.max_qps:g}",
        )
    return spec


def _block(path, node, cls, where: str, line):
    if not isinstance(node, LineDict):
        raise MatrixError(
            path,
            getattr(node, "line", line),
            where,
            f"must be a mapping, e.g. `{EXAMPLES.get(where, where.rsplit('.', 1)[-1] + ': {}')}`",
        )
    allowed = tuple(f.name for f in fields(cls))
    values = {}
    for key, value in node.items():
        name, key_line = f"{where}.{key}", node.lines[key]
        if key not in allowed:
            raise MatrixError(path, key_line, name, f"unknown key; expected one of: {', '.join(allowed)}")
        if key in NESTED:
            values[key] = _block(path, value, NESTED[key], name, key_line)
        else:
            values[key] = _value(path, key_line, name, value, *RULES[key])
    return cls(**values)


def _value(path, line, name, value, kind, low, high, low_ok):
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind == "bool":
        if not isinstance(value, bool):
            raise MatrixError(path, line, name, f"must be true or false, got {value!r}")
        return value
    if kind == "ints":
        if not isinstance(value, LineList) or not value:
            raise MatrixError(path, line, name, "must be a non-empty list of integers, e.g. [1, 8, 32]")
        return tuple(
            _value(path, item_line, f"{name}[{i}]", item, "int", low, high, low_ok)
            for i, (item, item_line) in enumerate(zip(value, value.lines))
        )
    integer = kind == "int"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise MatrixError(
            path, line, name, f"must be {'an integer' if integer else 'a number'}, got {value!r}"
        )
    if not math.isfinite(value):
        raise MatrixError(path, line, name, f"must be a finite number, got {value!r}; write a number")
    below = value < low or (value == low and not low_ok)
    if below or value > high:
        lowest = f"at least {low}" if low_ok else f"greater than {low}"
        span = lowest if high == UNBOUNDED else f"{lowest} and at most {high}"
        raise MatrixError(path, line, name, f"must be {span}, got {value}")
    return value if integer else float(value)


SECTION_PARSERS["scenario"] = parse_scenario
