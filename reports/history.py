"""The history store: append-only, one file per run per machine, `DIR/<machine>/<UTC time>-<run id>.json`.

Each entry holds the run's header (time, git commit when there is one, hardware and software fingerprints,
where it came from) and each cell's record under its series key (reports/fingerprint.py); kernel
micro-benchmark runs hold their records the same way. An entry is written once, atomically, and never
rewritten: adding the same run again finds it there and leaves it.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from genrec_bench.matrices.errors import ResultsError
from genrec_bench.reports import fingerprint as fp
from genrec_bench.reports.load import HISTORY_FORMAT, load

BASELINES = Path(__file__).resolve().parent / "baselines" / "h100"


@dataclass
class Run:
    """One run of cells or kernel micro-benchmarks, as the history keeps it."""

    id: str
    time: str  # ISO 8601, UTC, seconds: 2026-11-23T03:47:41Z
    commit: str | None
    source: str
    hardware: dict
    software: dict
    cells: dict[str, dict] = field(default_factory=dict)  # series key → record
    kernels: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def machine(self) -> str:
        return fp.machine_folder(self.hardware)

    def entry(self) -> dict:
        """The history file's content."""
        return {
            "format": HISTORY_FORMAT,
            "run": {"id": self.id, "time": self.time, "commit": self.commit, "source": self.source},
            "hardware": self.hardware,
            "hardware_id": fp.short_hash(self.hardware),
            "software": self.software,
            "software_id": fp.short_hash(self.software),
            "cells": [{"series": k, "record": r} for k, r in self.cells.items()],
            "kernels": [{"series": k, "record": r} for k, r in self.kernels.items()],
        }


def _utc(text, path: str, field_name: str) -> str:
    try:
        when = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ResultsError(f"{path}: {field_name}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _commit(doc: dict) -> str | None:
    info = doc.get("commit_info") or {}
    commit = info.get("id")
    return None if not commit or commit == "unknown" or info.get("error") else commit


def read_run(path: str, *, validate: bool = True) -> Run:
    """A run from a pytest-benchmark file, a kernel micro-benchmark file or a history entry."""
    loaded = load(path, validate=validate)
    doc, source = loaded.doc, Path(path).name
    if loaded.kind == "history":
        head = doc.get("run") or {}
        if not head.get("id") or not head.get("time"):
            raise ResultsError(
                f"{path}: run.id and run.time are missing; is this a genrec-bench history entry?"
            )
        run = Run(
            head["id"],
            head["time"],
            head.get("commit"),
            head.get("source", source),
            doc.get("hardware") or {},
            doc.get("software") or {},
            path=path,
        )
        run.cells = {r.name: r.record for r in loaded.results}
        run.kernels = dict(zip(loaded.kernel_keys, loaded.kernels))
        run.problems = loaded.problems
        return run
    if loaded.kind == "kernels":
        machine = doc["machine"]
        if "date" not in machine:
            raise ResultsError(f"{path}: machine.date is missing; the history orders runs by time")
        run = Run(
            "",
            _utc(machine["date"], path, "machine.date"),
            None,
            source,
            fp.hardware_of_kernels(machine),
            fp.software_of_kernels(machine),
        )
        run.kernels = {fp.kernel_series_key(r): r for r in loaded.kernels}
    else:
        if "datetime" not in doc:
            raise ResultsError(f"{path}: datetime is missing; the history orders runs by time")
        records = [r.record for r in loaded.results]
        run = Run(
            "",
            _utc(doc["datetime"], path, "datetime"),
            _commit(doc),
            source,
            fp.hardware_of_cells(loaded.machine_info),
            fp.software_of_cells(loaded.machine_info, records),
        )
        run.cells = {fp.series_key(r): r for r in records}
    run.problems = loaded.problems
    run.id = fp.short_hash(
        {"time": run.time, "hardware": run.hardware, "cells": run.cells, "kernels": run.kernels}
    )[:12]
    return run


def entry_name(run: Run) -> str:
    stamp = run.time.replace("-", "").replace(":", "")
    return f"{stamp}-{run.id}.json"


def add(history: str | os.PathLike, run: Run) -> tuple[Path, bool]:
    """Write `run` into the store (creating the folders); (its path, False) when it was already there."""
    if not run.cells and not run.kernels:
        raise ResultsError(f"{run.source}: no valid records to add to the history")
    folder = Path(history) / run.machine
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry_name(run)
    if target.exists():
        return target, False
    # Written beside the target, then linked into place: a reader never sees half an entry, and an existing
    # entry is never replaced (os.link refuses).
    with tempfile.NamedTemporaryFile(
        "w", dir=folder, suffix=".tmp", delete=False, encoding="utf-8"
    ) as handle:
        json.dump(run.entry(), handle, separators=(",", ":"))
        tmp = handle.name
    os.chmod(tmp, 0o644)  # an entry is read by everyone who reads the store, as any other written file
    try:
        os.link(tmp, target)
    except FileExistsError:
        return target, False
    finally:
        os.unlink(tmp)
    return target, True


@dataclass
class History:
    """The runs of a store, oldest first, and one line per entry that could not be read."""

    runs: list[Run]
    problems: list[str]

    def machines(self) -> list[str]:
        return sorted({r.machine for r in self.runs})

    def of_machine(self, machine: str) -> list[Run]:
        return [r for r in self.runs if r.machine == machine]


def read_history(history: str | os.PathLike, *, validate: bool = False) -> History:
    """Every entry under `history`; a folder that is not there is one ResultsError line."""
    root = Path(history)
    if not root.is_dir():
        raise ResultsError(
            f"{root}: no history here; start one with `python -m reports history add --history "
            f"{root} RUN.json` or `history import-baselines --history {root}`"
        )
    runs, problems = [], []
    for path in sorted(root.glob("*/*.json")):
        try:
            run = read_run(str(path), validate=validate)
        except ResultsError as err:
            problems.append(f"{err} (skipped)")
            continue
        problems += run.problems
        runs.append(run)
    runs.sort(key=lambda r: (r.time, r.id))
    return History(runs, problems)


def _is_run_file(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # unreadable: let the reader name what is wrong with it
    return isinstance(doc, dict) and ("benchmarks" in doc or {"machine", "records"} <= set(doc))


def baseline_files(folder: str | os.PathLike = BASELINES) -> list[Path]:
    """The committed baselines of a machine: its nightly, serving and kernel micro-benchmark files (pytest-
    benchmark JSON, or a micro-benchmark's machine + records). Other measurement files kept beside them (a
    probe's raw figures, a container of several sessions' results) are not runs of the history."""
    files = [path for path in sorted(Path(folder).glob("*.json")) if _is_run_file(path)]
    if not files:
        raise ResultsError(f"{folder}: no baseline JSON files here")
    return files
