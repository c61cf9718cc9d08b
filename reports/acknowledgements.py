"""Acknowledgements: known changes the gate reports but does not fail on, until they expire.

The file (reports/acknowledgements.yaml by default; its header says the format) is a mapping with one key,
`acknowledgements`, a list of entries: `cell` (a shell-style pattern over cell or kernel ids), `metric` (one
of the gated metrics, `oracle`, or `*`), `reason`, `expires` (YYYY-MM-DD; the last day it applies).
"""

from __future__ import annotations

import datetime
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from genrec_bench.matrices.errors import HarnessError, ResultsError
from genrec_bench.matrices.yaml_lines import load_yaml
from genrec_bench.reports.metrics import METRIC_NAMES

DEFAULT = Path(__file__).resolve().parent / "acknowledgements.yaml"
FIELDS = ("cell", "metric", "reason", "expires")


@dataclass(frozen=True)
class Acknowledgement:
    cell: str
    metric: str
    reason: str
    expires: datetime.date
    where: str  # file:line, for messages

    def applies(self, cell: str, metric: str, on: datetime.date) -> bool:
        return on <= self.expires and self.metric in ("*", metric) and fnmatch.fnmatchcase(cell, self.cell)


def _date(value, where: str) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ResultsError(f"{where}: expires: {value!r} is not a date; write YYYY-MM-DD") from None


def load_acknowledgements(path: str | Path = DEFAULT) -> list[Acknowledgement]:
    """The entries of an acknowledgements file; a mistake is one ResultsError line naming file, line and
    field."""
    path = str(path)
    if not Path(path).is_file():
        raise ResultsError(
            f"{path}: no acknowledgements file here; pass --acknowledgements with an existing file"
        )
    if not any(
        line.strip() and not line.lstrip().startswith("#") for line in Path(path).read_text().splitlines()
    ):
        return []
    try:
        doc = load_yaml(path)
    except HarnessError as err:
        raise ResultsError(str(err)) from None
    if (
        not isinstance(doc, dict)
        or set(doc) != {"acknowledgements"}
        or not isinstance(doc["acknowledgements"], (list, type(None)))
    ):
        raise ResultsError(f"{path}: the file must hold one key, `acknowledgements`, with a list of entries")
    out = []
    entries = doc["acknowledgements"] or []
    for i, entry in enumerate(entries):
        where = f"{path}:{entries.lines[i]}"
        if not isinstance(entry, dict):
            raise ResultsError(f"{where}: acknowledgements[{i}]: must be a mapping with {', '.join(FIELDS)}")
        missing = [f for f in FIELDS if f not in entry or entry[f] in (None, "")]
        unknown = sorted(set(entry) - set(FIELDS))
        if missing or unknown:
            what = f"missing {', '.join(missing)}" if missing else f"unknown key {', '.join(unknown)}"
            raise ResultsError(f"{where}: acknowledgements[{i}]: {what}; an entry has {', '.join(FIELDS)}")
        metric = str(entry["metric"])
        if metric not in (*METRIC_NAMES, "oracle", "*"):
            raise ResultsError(
                f"{path}:{entry.lines['metric']}: acknowledgements[{i}].metric: {metric!r} is not "
                f"one of {', '.join(METRIC_NAMES)}, oracle, *"
            )
        out.append(
            Acknowledgement(
                str(entry["cell"]),
                metric,
                str(entry["reason"]),
                _date(entry["expires"], f"{path}:{entry.lines['expires']}"),
                where,
            )
        )
    return out
