"""The matrix's `serving:` section: how Triton cells deploy the model and which load they put on it.

```yaml
serving:
  target: ensemble         # what requests go to: the ensemble (preprocess → genrec → postprocess) or genrec
  max_batch_size: 64       # dynamic batching of every model in the repository
  preferred_batch_sizes: [16, 32]
  max_queue_delay_us: 100  # how long genrec's batcher waits to fill a batch
  instances: 1             # genrec instances (one Python stub process each)
  instance_kind: auto      # auto (GPU when CUDA is there) | cpu | gpu
  preselect: 2             # genrec returns preselect × k candidates; postprocess keeps the top k
  cuda_graphs: true        # GPU instances replay one CUDA graph per batch bucket instead of eager launches
  startup_timeout_s: 90
  sweep: {concurrency: [1, 2, 4, 8], warmup_s: 0.5, measure_s: 2.0, clients: 1}
  poisson: {rates: [100, 200], duration_s: 2.0, warmup_s: 0.5, clients: 1, seed: 0}
  perf_analyzer: {measurement_interval_ms: 2000, stability_percentage: 20, max_trials: 6}
```
Every key is optional; mistakes are MatrixErrors naming file, line and field. Importing this module registers
the parser in `matrices.loader.SECTION_PARSERS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from genrec_bench.matrices.errors import MatrixError
from genrec_bench.matrices.loader import SECTION_PARSERS
from genrec_bench.matrices.yaml_lines import LineDict, LineList

TARGETS = ("ensemble", "genrec")
INSTANCE_KINDS = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class SweepSpec:
    """Closed loop: each level keeps `concurrency` requests outstanding, spread over `clients` processes."""

    concurrency: tuple[int, ...] = (1, 2, 4)
    warmup_s: float = 0.5
    measure_s: float = 2.0
    clients: int = 1


@dataclass(frozen=True)
class PoissonSpec:
    """Open loop: requests arrive as a Poisson process at each target rate (requests/s), as MLPerf Server."""

    rates: tuple[float, ...] = (50.0,)
    duration_s: float = 2.0
    warmup_s: float = 0.5
    clients: int = 1
    seed: int = 0


@dataclass(frozen=True)
class PerfAnalyzerSpec:
    """perf_analyzer's own measurement settings for the cross-check."""

    measurement_interval_ms: int = 2000
    stability_percentage: float = 20.0
    max_trials: int = 6


@dataclass(frozen=True)
class ServingSpec:
    target: str = "ensemble"
    max_batch_size: int = 64
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 100
    instances: int = 1
    instance_kind: str = "auto"
    preselect: int = 2
    cuda_graphs: bool = True
    startup_timeout_s: float = 90.0
    sweep: SweepSpec = field(default_factory=SweepSpec)
    poisson: PoissonSpec = field(default_factory=PoissonSpec)
    perf_analyzer: PerfAnalyzerSpec = field(default_factory=PerfAnalyzerSpec)

    def repository_key(self) -> dict:
        """What changes the generated model repository (the load settings do not)."""
        return {
            k: getattr(self, k)
            for k in (
                "target",
                "max_batch_size",
                "preferred_batch_sizes",
                "max_queue_delay_us",
                "instances",
                "instance_kind",
                "preselect",
                "cuda_graphs",
            )
        }


def serving_spec(matrix) -> ServingSpec:
    """The matrix's serving section, or the defaults when it has none (or there is no matrix)."""
    return (matrix.sections.get("serving") if matrix is not None else None) or ServingSpec()


# ----------------------------------------------------------------------------------------------- parsing


def parse_serving(path: str, node: Any) -> ServingSpec:
    """Validate the `serving:` mapping into a ServingSpec."""
    where = "serving"
    _mapping(path, node, where)
    values = _fields(
        path,
        node,
        ServingSpec,
        where,
        nested={"sweep": SweepSpec, "poisson": PoissonSpec, "perf_analyzer": PerfAnalyzerSpec},
    )
    spec = ServingSpec(**values)
    if spec.target not in TARGETS:
        raise MatrixError(
            path,
            node.lines["target"],
            f"{where}.target",
            f"unknown target {spec.target!r}; choose one of: {', '.join(TARGETS)}",
        )
    if spec.instance_kind not in INSTANCE_KINDS:
        raise MatrixError(
            path,
            node.lines["instance_kind"],
            f"{where}.instance_kind",
            f"unknown kind {spec.instance_kind!r}; choose one of: {', '.join(INSTANCE_KINDS)}",
        )
    too_big = [b for b in spec.preferred_batch_sizes if b > spec.max_batch_size]
    if too_big:
        raise MatrixError(
            path,
            node.lines["preferred_batch_sizes"],
            f"{where}.preferred_batch_sizes",
            f"{too_big[0]} is larger than max_batch_size={spec.max_batch_size}; lower it",
        )
    return spec


_RULES = {
    # field: (kind, minimum, strictly greater)
    "max_batch_size": ("int", 1, False),
    "max_queue_delay_us": ("int", 0, False),
    "instances": ("int", 1, False),
    "preselect": ("int", 1, False),
    "startup_timeout_s": ("num", 0, True),
    "warmup_s": ("num", 0, False),
    "measure_s": ("num", 0, True),
    "duration_s": ("num", 0, True),
    "clients": ("int", 1, False),
    "seed": ("int", 0, False),
    "measurement_interval_ms": ("int", 1, False),
    "stability_percentage": ("num", 0, True),
    "max_trials": ("int", 1, False),
    "preferred_batch_sizes": ("ints", 1, False),
    "concurrency": ("ints", 1, False),
    "rates": ("nums", 0, True),
    "target": ("str", None, False),
    "instance_kind": ("str", None, False),
    "cuda_graphs": ("bool", None, False),
}


EXAMPLES = {
    "serving": "serving: {max_batch_size: 64}",
    "serving.sweep": "sweep: {concurrency: [1, 4]}",
    "serving.poisson": "poisson: {rates: [100]}",
    "serving.perf_analyzer": "perf_analyzer: {max_trials: 6}",
}


def _mapping(path, node, where, line=None):
    if not isinstance(node, LineDict):
        raise MatrixError(
            path,
            getattr(node, "line", line),
            where,
            f"must be a mapping, e.g. `{EXAMPLES.get(where, 'key: value')}`",
        )


def _fields(path, node: LineDict, cls, where: str, nested: dict | None = None) -> dict:
    nested = nested or {}
    allowed = tuple(f.name for f in fields(cls))
    out = {}
    for key, value in node.items():
        line, name = node.lines[key], f"{where}.{key}"
        if key not in allowed:
            raise MatrixError(path, line, name, f"unknown key; expected one of: {', '.join(allowed)}")
        if key in nested:
            _mapping(path, value, name, line)
            out[key] = nested[key](**_fields(path, value, nested[key], name))
        else:
            out[key] = _value(path, line, name, value, *_RULES[key])
    return out


def _value(path, line, name, value, kind, minimum, strict):
    if kind == "bool":
        if not isinstance(value, bool):
            raise MatrixError(path, line, name, f"must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise MatrixError(path, line, name, f"must be a string, got {value!r}")
        return value
    if kind in ("ints", "nums"):
        if not isinstance(value, LineList) or not value:
            raise MatrixError(
                path, line, name, f"must be a non-empty list, e.g. `{name.rsplit('.', 1)[-1]}: [1, 2, 4]`"
            )
        items = tuple(
            _value(path, item_line, f"{name}[{i}]", item, kind[:-1], minimum, strict)
            for i, (item, item_line) in enumerate(zip(value, value.lines))
        )
        if len(set(items)) != len(items):
            raise MatrixError(path, line, name, f"lists a value twice: {list(items)}; list each once")
        return items
    integer = kind == "int"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise MatrixError(
            path, line, name, f"must be {'an integer' if integer else 'a number'}, got {value!r}"
        )
    if value < minimum or (strict and value == minimum):
        raise MatrixError(
            path, line, name, f"must be {'greater than' if strict else 'at least'} {minimum}, got {value}"
        )
    return value if integer else float(value)


SECTION_PARSERS["serving"] = parse_serving
