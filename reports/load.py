"""Read result files: a file that cannot be read at all is one ResultsError line; a record that does not
validate is named in one line and left out, so the rest of the file is still read (a record is complete and
valid, or absent with its failure named).

Three kinds of file: pytest-benchmark JSON (`--benchmark-json`, one record per cell in `extra_info`), the
kernel micro-benchmarks' JSON (`{"machine", "hbm_copy", "records"}`) and history entries (reports/history.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from genrec_bench.matrices.errors import ResultsError

HISTORY_FORMAT = "genrec-bench-history/1"
KERNEL_FIELDS = {
    "op": str,
    "provider": str,
    "dtype": str,
    "shape": dict,
    "median_us": (int, float),
    "gbps": (int, float),
    "hbm_fraction": (int, float),
    "bytes": int,
}


@dataclass(frozen=True)
class Result:
    """One benchmark of the file: its pytest name, pytest-benchmark stats and our record."""

    name: str
    stats: dict
    record: dict


@dataclass
class ResultFile:
    """What a file held: its kind, the top-level document, the valid records, and one line per record left
    out."""

    path: str
    kind: str  # "cells", "kernels" or "history"
    doc: dict
    results: list[Result] = field(default_factory=list)
    kernels: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    kernel_keys: list[str] = field(default_factory=list)  # history entries: each kernel record's series key

    @property
    def machine_info(self) -> dict:
        return self.doc.get("machine_info", {})


def read_json(path: str) -> dict:
    """The JSON object in `path`, or one ResultsError line saying what is wrong with the file and what to
    pass."""
    hint = "pass the JSON written by pytest --benchmark-json (or by bench.kernel_micro --json)"
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        raise ResultsError(f"{path}: not found; {hint}") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a folder, not a results file; {hint}") from None
    except PermissionError:
        raise ResultsError(f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); {hint}"
        ) from None
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); was the run cut short?"
        ) from None
    if not isinstance(doc, dict):
        raise ResultsError(f"{path}: holds a JSON {type(doc).__name__}, not an object; {hint}")
    return doc


def _not_finite(value, where: str = "") -> str | None:
    """The path of the first NaN or infinity in `value` (JSON has neither; Python's parser lets them
    through)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(record)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _not_finite(item, f"{where}/{key}" if where else str(key))
        if found:
            return found
    return None


class RecordValidator:
    """Checks a cell record against bench/record.schema.json; `None` when valid, else why not (one line)."""

    def __init__(self, validate: bool = True):
        self.validator = None
        if validate:
            try:
                import jsonschema
            except ImportError:
                raise ResultsError(
                    "validating records needs the jsonschema package (a genrec-bench dependency): "
                    "pip install jsonschema, or pass --no-validate"
                ) from None
            from genrec_bench.bench.record import schema

            self.validator = jsonschema.Draft202012Validator(schema())

    def __call__(self, record) -> str | None:
        if not isinstance(record, dict) or not record:
            return "empty extra_info: the cell failed before its record was complete"
        bad = _not_finite(record)
        if bad:
            return f"extra_info/{bad}: {record_value(record, bad)} is not a number JSON can hold"
        if self.validator is None:
            return (
                None
                if isinstance(record.get("cell"), dict) and "id" in record["cell"]
                else "extra_info/cell/id: missing"
            )
        import jsonschema

        error = jsonschema.exceptions.best_match(self.validator.iter_errors(record))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "(record)"
        return f"extra_info/{where}: {error.message}"


def record_value(record: dict, path: str):
    value = record
    for key in path.split("/"):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def kernel_problem(record) -> str | None:
    """Why a kernel micro-benchmark record is unusable, or None. A provider that disagreed with the reference
    carries `error` instead of timings: that is a fact (kept), not a broken record."""
    if not isinstance(record, dict):
        return "not an object"
    if "error" in record:
        return (
            None
            if isinstance(record.get("op"), str) and isinstance(record.get("provider"), str)
            else "an error record needs op and provider"
        )
    for name, kind in KERNEL_FIELDS.items():
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            return f"{name}: missing or not {getattr(kind, '__name__', 'a number')}"
    bad = _not_finite(record)
    if bad:
        return f"{bad}: not a finite number"
    if record["median_us"] <= 0:
        return f"median_us: {record['median_us']} must be positive"
    return None


def load(path: str, *, validate: bool = True) -> ResultFile:
    """Read a results file of any of the three kinds; bad records land in `problems`, good ones in `results`
    or `kernels`."""
    doc = read_json(path)
    if doc.get("format") == HISTORY_FORMAT:
        return _load_history_entry(path, doc, validate)
    if isinstance(doc.get("benchmarks"), list):
        out = ResultFile(path, "cells", doc)
        check = RecordValidator(validate)
        for i, bench in enumerate(doc["benchmarks"]):
            name = bench.get("name", "?") if isinstance(bench, dict) else "?"
            record = bench.get("extra_info") if isinstance(bench, dict) else None
            problem = check(record)
            if problem:
                out.problems.append(f"{path}: benchmarks[{i}] {name}: {problem} (skipped)")
            else:
                out.results.append(Result(name=name, stats=bench.get("stats") or {}, record=record))
        return out
    if isinstance(doc.get("records"), list) and isinstance(doc.get("machine"), dict):
        out = ResultFile(path, "kernels", doc)
        for i, record in enumerate(doc["records"]):
            problem = kernel_problem(record)
            if problem:
                out.problems.append(f"{path}: records[{i}]: {problem} (skipped)")
            else:
                out.kernels.append(record)
        return out
    raise ResultsError(
        f"{path}: no `benchmarks` list (pytest-benchmark) nor `machine` and `records` (kernel "
        f"micro-benchmarks); pass a file written by pytest --benchmark-json"
    )


def _load_history_entry(path: str, doc: dict, validate: bool) -> ResultFile:
    """A history entry's records; each Result is named by its series key."""
    out = ResultFile(path, "history", doc)
    check = RecordValidator(validate)
    for i, entry in enumerate(doc.get("cells", [])):
        problem = check(entry.get("record") if isinstance(entry, dict) else None)
        if problem:
            out.problems.append(f"{path}: cells[{i}]: {problem} (skipped)")
        else:
            out.results.append(Result(name=str(entry.get("series")), stats={}, record=entry["record"]))
    for i, entry in enumerate(doc.get("kernels", [])):
        problem = kernel_problem(entry.get("record") if isinstance(entry, dict) else None)
        if problem:
            out.problems.append(f"{path}: kernels[{i}]: {problem} (skipped)")
        else:
            out.kernels.append(entry["record"])
            out.kernel_keys.append(str(entry.get("series")))
    return out


def load_results(path: str, *, validate: bool = True) -> tuple[dict, list[Result], list[str]]:
    """(machine_info, valid cell results, one line per record left out) of a --benchmark-json file."""
    loaded = load(path, validate=validate)
    if loaded.kind == "kernels":
        raise ResultsError(
            f"{path}: a kernel micro-benchmark file has no cell records; summary and pivot read "
            f"pytest --benchmark-json files"
        )
    return loaded.machine_info, loaded.results, loaded.problems
