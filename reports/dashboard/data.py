"""What the dashboard page shows, as plain JSON: per machine its runs, tonight's verdicts, every series'
points, the serving sweeps and the kernel micro-benchmarks. The page only draws; every number is decided here,
by the same gate code as `python -m reports gate`."""

from __future__ import annotations

from dataclasses import asdict

from genrec_bench.bench.stats import GateSettings
from genrec_bench.reports.acknowledgements import Acknowledgement
from genrec_bench.reports.fingerprint import CELL_AXES, kernel_id, software_changes
from genrec_bench.reports.gate import baseline_runs, judge
from genrec_bench.reports.history import History, Run
from genrec_bench.reports.metrics import peak_mb
from genrec_bench.reports.verdicts import ratio_text


def _point(index: int, record: dict) -> dict:
    lat, num = record["latency_ms"], record["numerics"]
    tol = num.get("tolerance") or {}
    return {
        "run": index,
        "p50": lat["p50"],
        "ci": lat.get("p50_ci95"),
        "p99": lat["p99"],
        "throughput": record["throughput"]["sequences_per_s"],
        "memory": peak_mb(record),
        "rel_err": num.get("max_rel_err"),
        "tolerance": tol.get("max_rel_err"),
        "passed": num["passed"],
    }


def _sweep(record: dict) -> list[dict] | None:
    levels = ((record.get("serving") or {}).get("sweep") or {}).get("levels")
    if not levels:
        return None
    return [
        {
            "concurrency": lv["concurrency"],
            "requests_per_s": lv["requests_per_s"],
            "p50": lv["latency_ms"].get("p50"),
            "p99": lv["latency_ms"].get("p99"),
        }
        for lv in levels
    ]


def _tonight(runs: list[Run], kind: str) -> Run | None:
    having = [r for r in runs if getattr(r, kind)]
    return having[-1] if having else None


def _verdicts(
    runs: list[Run], settings: GateSettings, acks: list[Acknowledgement]
) -> tuple[list, list, list]:
    """Tonight's verdicts: the latest cell run and the latest kernel run, each against the runs before it."""
    verdicts, oracle, notes = [], [], []
    for kind in ("cells", "kernels"):
        tonight = _tonight(runs, kind)
        if tonight is None:
            continue
        baseline, skipped = baseline_runs(tonight, runs)
        result = judge(tonight, baseline, settings, acks)
        notes += [f"{tonight.source}: {n}" for n in skipped + result.notes]
        for v in result.verdicts:
            record = getattr(tonight, kind)[v.series]
            axes = {a: record["cell"].get(a) for a in CELL_AXES} if kind == "cells" else {}
            verdicts.append(asdict(v) | {"ratio": ratio_text(v), "axes": axes, "kind": kind})
        oracle += [asdict(o) for o in result.oracle if o.verdict not in ("ok", "new")]
    return verdicts, oracle, notes


def _series(runs: list[Run]) -> dict:
    out: dict[str, dict] = {}
    for index, run in enumerate(runs):
        for key, record in run.cells.items():
            entry = out.setdefault(
                key,
                {
                    "cell": record["cell"]["id"],
                    "axes": {a: record["cell"].get(a) for a in CELL_AXES},
                    "points": [],
                },
            )
            entry["points"].append(_point(index, record))
            sweep = _sweep(record)
            if sweep:
                entry["sweep"] = sweep  # the latest run's sweep wins
    return out


def _kernels(runs: list[Run]) -> list[dict]:
    latest: dict[str, tuple[int, dict]] = {}
    for index, run in enumerate(runs):
        for key, record in run.kernels.items():
            latest[key] = (index, record)
    return [
        {
            "id": kernel_id(r),
            "series": key,
            "run": i,
            "op": r["op"],
            "provider": r["provider"],
            "dtype": r.get("dtype"),
            "shape": r.get("shape"),
            "error": r.get("error"),
            "median_us": r.get("median_us"),
            "gbps": r.get("gbps"),
            "hbm_fraction": r.get("hbm_fraction"),
        }
        for key, (i, r) in sorted(latest.items())
    ]


def machine_data(name: str, runs: list[Run], settings: GateSettings, acks: list[Acknowledgement]) -> dict:
    """Everything the page shows about one machine."""
    verdicts, oracle, notes = _verdicts(runs, settings, acks)
    markers = []
    for i in range(1, len(runs)):
        changed = software_changes(runs[i - 1].software, runs[i].software)
        if changed:
            markers.append({"run": i, "time": runs[i].time, "changes": changed})
    return {
        "name": name,
        "hardware": runs[-1].hardware,
        "runs": [
            {
                "id": r.id,
                "time": r.time,
                "source": r.source,
                "commit": r.commit,
                "software": r.software,
                "cells": len(r.cells),
                "kernels": len(r.kernels),
            }
            for r in runs
        ],
        "verdicts": verdicts,
        "oracle": oracle,
        "notes": notes,
        "markers": markers,
        "series": _series(runs),
        "kernels": _kernels(runs),
    }


def dashboard_data(history: History, settings: GateSettings, acks: list[Acknowledgement]) -> dict:
    """The page's data for every machine of the store."""
    return {
        "settings": asdict(settings),
        "machines": [machine_data(m, history.of_machine(m), settings, acks) for m in history.machines()],
        "problems": history.problems,
    }
