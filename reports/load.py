"""Read a pytest-benchmark JSON and validate every cell record against the repo's record schema."""
from __future__ import annotations

import json
from dataclasses import dataclass

from genrec_bench.matrices.errors import ResultsError


@dataclass(frozen=True)
class Result:
    """One benchmark of the file: its pytest name, pytest-benchmark stats and our record."""

    name: str
    stats: dict
    record: dict


def _schema() -> dict:
    from genrec_bench.bench.record import schema

    return schema()


def load_results(path: str, *, validate: bool = True) -> tuple[dict, list[Result]]:
    """(machine_info, results) of a --benchmark-json file; a bad file or record is one ResultsError line."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise ResultsError(f"{path}: not found; pass the file written by pytest --benchmark-json") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); was the run cut short?") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ResultsError(f"{path}: no `benchmarks` list; is this a pytest-benchmark JSON file?")
    schema = _schema() if validate else None
    results = []
    for i, bench in enumerate(doc["benchmarks"]):
        record = bench.get("extra_info") or {}
        if schema is not None:
            _validate(path, i, bench.get("name", "?"), record, schema)
        results.append(Result(name=bench.get("name", "?"), stats=bench.get("stats", {}), record=record))
    return doc.get("machine_info", {}), results


def _validate(path, index, name, record, schema):
    try:
        import jsonschema
    except ImportError:
        raise ResultsError("validating records needs the jsonschema package (a genrec-bench dependency): "
                           "pip install jsonschema, or pass --no-validate") from None

    try:
        jsonschema.validate(record, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(record)"
        raise ResultsError(f"{path}: benchmarks[{index}] {name}: extra_info/{where}: {exc.message}") from None
