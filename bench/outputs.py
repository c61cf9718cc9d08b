"""The run's output files, checked before the first cell and kept safe after the last.

pytest-benchmark writes `--benchmark-json` only when the session ends: a path into a read-only folder, onto a
directory or onto a full disk would lose every measured cell at the very end. So each output path is tried
before anything runs (a probe of PROBE_BYTES written beside it, then removed), the two options may not name
one file, and if the final write fails anyway (the disk filled during the run) the records are written to a
fallback file, named in one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

PROBE_BYTES = 64 * 1024


def output_problem(path: Path) -> str | None:
    """Why `path` cannot take the run's output (one clause), or None. Creates a missing parent folder."""
    if path.is_dir():
        return "is a directory; name a file in it"
    if path.exists() and not path.is_file():
        return "is not a regular file; name a file"
    if path.exists() and not os.access(path, os.W_OK):
        return "exists and is not writable"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".genrec-probe-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return f"cannot be written ({exc.strerror or exc})"
    return None


def check_outputs(paths: dict[str, str | None]) -> str | None:
    """One line naming the first problem among `paths` (option → path), or None."""
    seen: dict[Path, str] = {}
    for option, value in paths.items():
        if not isinstance(value, (str, os.PathLike)):
            continue  # not given (or an already open file from an older pytest-benchmark)
        path = Path(value)
        problem = output_problem(path)
        if problem:
            return f"{option} {value}: {problem}"
        resolved = path.resolve()
        if resolved in seen:
            return f"{seen[resolved]} and {option} both name {value}; give each its own file"
        seen[resolved] = option
    return None


def write_fallback(records: list[dict], why: str) -> str:
    """Write `records` (one JSON per line) where a failed final write cannot have gone; returns the line to
    print."""
    handle, name = tempfile.mkstemp(prefix="genrec-bench-records-", suffix=".jsonl")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    return (
        f"genrec-bench: writing the results failed ({why}); the {len(records)} records measured are in {name}"
    )
