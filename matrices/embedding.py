"""Where the item table lives: the `embedding` setting, its cell labels and the matrix's `embedding:` section.

Three levels, later ones winning:
- a preset's `embedding:` in models/presets.yaml (every field below);
- the matrix's `embedding:` section: the shared knobs only (policy, ways, storage, warm_batches,
  pool_batches);
- the cell's `embedding` axis value, a label that is also the end of the cell id: `device`, `host`,
  `cached-10pct` (a fraction of the table's rows), `cached-512mb` (a budget in MiB), either with an optional
  policy suffix (`cached-10pct-lru`). Placement and budget are set per cell only, so an id always says them.

```yaml
embedding:
  policy: lfu       # lfu | lru: how a cache set picks its victim (models/embedding/policies.py says why lfu)
  ways: 32          # rows per cache set (the cache is set-associative; ways ≥ its rows = fully associative)
  storage: auto     # auto (the cell's precision) | fp16 | fp32: dtype of the host table and the cache
  warm_lookups: 0   # ids of the workload's item law run through the cache step alone first (steady state)
  warm_batches: 32  # then fresh batches of the workload through the whole model
  pool_batches: 64  # distinct fresh batches the timing's warm-up and timed rounds rotate through
```
With warm_lookups and warm_batches both 0 the cell is cold: its cache is emptied right before the timed
rounds.
```yaml
axes:
  embedding: [device, host, cached-1pct, cached-10pct]
```
Importing this module registers the section parser in `matrices.loader.SECTION_PARSERS` and the label check in
`matrices.loader.AXIS_CHECKS`.
"""

from __future__ import annotations

from typing import Any

from genrec_bench.matrices.errors import MatrixError
from genrec_bench.matrices.loader import AXIS_CHECKS, SECTION_PARSERS
from genrec_bench.matrices.yaml_lines import LineDict
from genrec_bench.models.embedding.spec import LABEL_EXAMPLE, SECTION_FIELDS, field_problem, label_problem

# ------------------------------------------------------------------------------------------ the section


def parse_embedding(path: str, node: Any) -> dict:
    """Validate the matrix's `embedding:` mapping into the overrides it makes (field → value)."""
    if not isinstance(node, LineDict):
        raise MatrixError(
            path,
            getattr(node, "line", None),
            "embedding",
            "must be a mapping, e.g. `embedding: {policy: lfu, warm_batches: 32}`",
        )
    out = {}
    for key, value in node.items():
        where, line = f"embedding.{key}", node.lines[key]
        if key in ("placement", "gpu_budget_mb", "fraction"):
            raise MatrixError(
                path,
                line,
                where,
                "placement and budget are set per cell, so its id says them: "
                f"use the axis, e.g. `embedding: [{LABEL_EXAMPLE}]`",
            )
        if key not in SECTION_FIELDS:
            raise MatrixError(path, line, where, f"unknown key; expected one of: {', '.join(SECTION_FIELDS)}")
        problem = field_problem(key, value)
        if problem:
            raise MatrixError(path, line, where, problem)
        out[key] = value
    return out


SECTION_PARSERS["embedding"] = parse_embedding
AXIS_CHECKS["embedding"] = label_problem
