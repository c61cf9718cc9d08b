"""The cell record that goes into `benchmark.extra_info`, and its JSON Schema (record.schema.json)."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("record.schema.json")
SCHEMA_VERSION = 2


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _finite(value):
    """JSON has no NaN/inf: unmeasurable numbers are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def build_record(
    *,
    cell: dict,
    latency_ms: dict,
    throughput: dict,
    timer: dict,
    memory: dict,
    numerics: dict,
    env: dict,
    backend: dict | None = None,
    **extra,
) -> dict:
    """Assemble the record; `extra` sections (e.g. `serving`) ride along under their own keys."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "cell": cell,
        "latency_ms": latency_ms,
        "throughput": throughput,
        "timer": timer,
        "memory": memory,
        "numerics": numerics,
        "env": env,
        "backend": backend or {},
    }
    record.update(extra)
    return _finite(record)


def validate(record: dict) -> None:
    """Raise jsonschema.ValidationError when `record` does not match the schema."""
    import jsonschema

    jsonschema.validate(record, schema())
