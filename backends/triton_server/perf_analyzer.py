"""Cross-check with NVIDIA's perf_analyzer, the reference load generator for Triton.

The binary (PyPI `perf-analyzer` 2.60.0: one native program) runs against the same server, model, input and
concurrency as the harness's sweep, and its throughput and latency go into the record beside ours. Where it
cannot run — not installed, or the wheel's binary needs a newer glibc than this machine has (2.60.0 needs
2.38; pip quietly installs an empty 0.1.0 placeholder on older systems) — the record says why instead.
The binary is called directly: its Python wrapper returns 0 even when it fails.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

BINARY_ENV = "GENREC_PERF_ANALYZER"
LATENCY_COLUMNS = {
    "p50 latency": "p50",
    "p90 latency": "p90",
    "p95 latency": "p95",
    "p99 latency": "p99",
    "Avg latency": "mean",
}
SERVER_COLUMNS = {
    "Server Queue": "queue_us",
    "Server Compute Input": "compute_input_us",
    "Server Compute Infer": "compute_infer_us",
    "Server Compute Output": "compute_output_us",
}


def locate() -> tuple[str | None, str]:
    """(path of a perf_analyzer that runs here, "") or (None, why not)."""
    spec = importlib.util.find_spec("perf_analyzer")
    in_wheel = (
        [str(Path(p) / "bin" / "perf_analyzer") for p in (spec.submodule_search_locations or [])]
        if spec
        else []
    )
    candidates = [
        os.environ.get(BINARY_ENV),
        *in_wheel,
        str(Path(sys.executable).parent / "perf_analyzer"),
        shutil.which("perf_analyzer"),
    ]
    found = next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)
    if found is None:
        return None, (
            f"perf_analyzer is not installed (not in a perf-analyzer wheel, not on PATH, not beside "
            f"{sys.executable}, "
            f"${BINARY_ENV} unset); pip's perf-analyzer 0.1.0 is an empty placeholder, 2.60.0 needs "
            f"glibc >= 2.38 and this machine has glibc {platform.libc_ver()[1] or 'unknown'}"
        )
    try:
        # No --help: run bare, it prints its usage. A loader failure (glibc) shows on stderr.
        probe = subprocess.run([found], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{found} does not run: {exc}"
    text = probe.stdout + probe.stderr
    if "GLIBC" in text and "not found" in text:
        return None, (
            f"{found} needs a newer glibc than this machine's {platform.libc_ver()[1]}: "
            f"{text.strip().splitlines()[0][:200]}"
        )
    if "Usage" not in text and "usage" not in text and "-m" not in text:
        return None, f"{found} does not look like perf_analyzer: {text.strip()[:200]}"
    return found, ""


def input_data(arrays: dict[str, np.ndarray]) -> dict:
    """perf_analyzer's --input-data JSON for the request's arrays, one row per entry (it batches with -b).
    Real item ids: its default random bytes would be nonsense ids."""
    rows = next(iter(arrays.values())).shape[0]
    return {
        "data": [
            {
                name: {"content": a[i].reshape(-1).tolist(), "shape": list(a.shape[1:])}
                for name, a in arrays.items()
            }
            for i in range(rows)
        ]
    }


def command(
    binary: str,
    *,
    protocol: str,
    url: str,
    model: str,
    concurrency: int,
    batch: int,
    data_path: str,
    csv_path: str,
    interval_ms: int,
    stability: float,
    max_trials: int,
) -> list[str]:
    return [
        binary,
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "-b",
        str(batch),
        "--concurrency-range",
        f"{concurrency}:{concurrency}",
        "--input-data",
        data_path,
        "--measurement-interval",
        str(interval_ms),
        "-s",
        str(stability),
        "--max-trials",
        str(max_trials),
        "-f",
        csv_path,
    ]


def parse_csv(text: str) -> list[dict]:
    """perf_analyzer's -f CSV (latencies in µs) → rows of
    {concurrency, requests_per_s, latency_ms, server}."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        latency = {key: float(row[col]) / 1e3 for col, key in LATENCY_COLUMNS.items() if row.get(col)}
        server = {key: float(row[col]) for col, key in SERVER_COLUMNS.items() if row.get(col)}
        rows.append(
            {
                "concurrency": int(float(row["Concurrency"])),
                "requests_per_s": float(row["Inferences/Second"]),
                "latency_ms": latency,
                "server": server,
            }
        )
    return rows


def cross_check(
    binary: str, *, protocol: str, url: str, model: str, batch: int, arrays: dict, levels, workdir: Path, spec
) -> dict:
    """Run perf_analyzer at each concurrency level; failures are recorded per level, never raised."""
    data_path = workdir / "perf_analyzer_input.json"
    data_path.write_text(json.dumps(input_data(arrays)))
    out = []
    for c in levels:
        csv_path = workdir / f"perf_analyzer_c{c}.csv"
        cmd = command(
            binary,
            protocol=protocol,
            url=url,
            model=model,
            concurrency=c,
            batch=batch,
            data_path=str(data_path),
            csv_path=str(csv_path),
            interval_ms=spec.measurement_interval_ms,
            stability=spec.stability_percentage,
            max_trials=spec.max_trials,
        )
        timeout = 30 + spec.max_trials * spec.measurement_interval_ms / 1000 * 3
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            out.append({"concurrency": c, "ok": False, "reason": f"no result within {timeout:.0f} s"})
            continue
        if proc.returncode != 0 or not csv_path.exists():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            out.append(
                {"concurrency": c, "ok": False, "reason": f"exit {proc.returncode}: {' | '.join(tail)}"}
            )
            continue
        rows = parse_csv(csv_path.read_text())
        out.append(
            {"ok": True, **rows[0]} if rows else {"concurrency": c, "ok": False, "reason": "empty CSV"}
        )
    return {"available": True, "binary": binary, "command": " ".join(cmd[:1] + cmd[1:]), "levels": out}
