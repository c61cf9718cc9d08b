"""Serving scenarios over a served target: a closed-loop concurrency sweep and open-loop Poisson arrivals.

Load comes from the target's load-generator processes (for Triton: asyncio tritonclient, one or several: see
`clients:`), so the harness process itself never limits the rate. Each level reports what the clients saw
(throughput, p50/p90/p99, computed by bench.stats) and what the server says about the same window (the
target's `window()`: for Triton the statistics extension's split per model and the achieved batch size from
Prometheus). A failed request ends the level at once; a dead server is named as such, with its log tail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from genrec_bench.backends.base import ServedTarget
from genrec_bench.bench.progress import steps
from genrec_bench.bench.stats import latency_summary
from genrec_bench.matrices.errors import BackendError
from genrec_bench.matrices.serving import PoissonSpec, SweepSpec

HANDSHAKE_TIMEOUT_S = 60.0
# Prometheus counters are published on the server's metrics interval (500 ms for the embedded server): wait it
# out before the closing scrape so the window's last executions are counted.
METRICS_SETTLE_S = 0.6


def split(total: int, parts: int) -> list[int]:
    """`total` spread over at most `parts` non-empty shares, as evenly as possible."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_workers(target: ServedTarget, jobs: list[dict], what: str, window_s: float) -> list[dict]:
    """Start one loadgen per job, release them together, collect their results; fail fast with a reason."""
    procs = []
    try:
        for job in jobs:
            job = {
                **job,
                "protocol": target.protocol,
                "url": target.url,
                "model": target.model,
                "outputs": list(target.outputs),
                "inputs": target.inputs_path,
            }
            proc = subprocess.Popen(
                [sys.executable, target.load_generator],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            procs.append(proc)
        for proc in procs:
            line = _readline(proc, HANDSHAKE_TIMEOUT_S)
            if line.strip() != "ready":
                _fail(
                    target, what, f"a load generator did not start: {(line + _stderr(proc)).strip()[-500:]}"
                )
        start_at = time.monotonic() + 0.05
        for proc in procs:
            proc.stdin.write(f"{start_at!r}\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=window_s + 60)
            except subprocess.TimeoutExpired:
                _fail(target, what, "a load generator did not finish within its window + 60 s")
            if proc.returncode != 0:
                _fail(target, what, f"a load generator exited {proc.returncode}: {err.strip()[-500:]}")
            results.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = [r for r in results if r["errors"]]
    if errors:
        _fail(
            target,
            what,
            f"{sum(r['errors'] for r in errors)} request(s) failed, first: {errors[0]['first_error']}",
        )
    return results


def _readline(proc, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def _stderr(proc) -> str:
    if proc.poll() is None:
        proc.kill()
    return proc.stderr.read() or ""


def _fail(target: ServedTarget, what: str, why: str):
    if not target.alive():
        raise BackendError(
            f"{target.name} | the server died during {what}: {why}; server log tail:\n{target.log_tail(12)}"
        )
    raise BackendError(f"{target.name} | {what} failed: {why}")


class _Window:
    """The server's account of one measured level: the target's snapshots around it."""

    def __init__(self, target: ServedTarget):
        self.target = target

    def __enter__(self):
        self.before = self.target.snapshot()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            time.sleep(METRICS_SETTLE_S)
            self.result = self.target.window(self.before, self.target.snapshot())
        return False


def concurrency_sweep(target: ServedTarget, spec: SweepSpec) -> dict:
    """Closed loop: at each level exactly `concurrency` requests are outstanding (spread over `clients`)."""
    levels = []
    for c in steps(spec.concurrency, f"{target.name} concurrency sweep"):
        jobs = [
            {"kind": "closed", "concurrency": share, "warmup_s": spec.warmup_s, "measure_s": spec.measure_s}
            for share in split(c, spec.clients)
        ]
        with _Window(target) as window:
            results = run_workers(
                target, jobs, f"the concurrency sweep at concurrency {c}", spec.warmup_s + spec.measure_s
            )
        latencies = [x for r in results for x in r["latencies_ms"]]
        completed = sum(r["completed"] for r in results)
        levels.append(
            {
                "concurrency": c,
                "clients": len(jobs),
                "requests_per_s": completed / spec.measure_s,
                "sequences_per_s": completed * target.batch / spec.measure_s,
                "latency_ms": latency_summary(latencies),
                **window.result,
            }
        )
    return {
        "kind": "closed_loop",
        "warmup_s": spec.warmup_s,
        "measure_s": spec.measure_s,
        "clients": spec.clients,
        "levels": levels,
    }


def poisson_load(target: ServedTarget, spec: PoissonSpec) -> dict:
    """Open loop: requests arrive as a Poisson process at each target rate, whatever the server's pace;
    latency counts from the scheduled arrival."""
    runs = []
    for rate in steps(spec.rates, f"{target.name} Poisson rates"):
        shares = split(spec.clients, spec.clients)
        jobs = [
            {
                "kind": "poisson",
                "rate": rate / len(shares),
                "seed": spec.seed + i,
                "warmup_s": spec.warmup_s,
                "measure_s": spec.duration_s,
            }
            for i in range(len(shares))
        ]
        with _Window(target) as window:
            results = run_workers(
                target, jobs, f"the Poisson load at {rate:g} requests/s", spec.warmup_s + spec.duration_s
            )
        latencies = [x for r in results for x in r["latencies_ms"]]
        arrivals = sum(r["arrivals"] for r in results)
        completed = sum(r["completed"] for r in results)
        runs.append(
            {
                "target_rate": rate,
                "clients": len(jobs),
                "offered_rate": arrivals / spec.duration_s,
                "achieved_rate": completed / spec.duration_s,
                "completed_share": completed / arrivals if arrivals else None,
                "latency_ms": latency_summary(latencies),
                "max_issue_lag_ms": max(r["max_issue_lag_ms"] for r in results),
                **window.result,
            }
        )
    return {
        "kind": "poisson",
        "warmup_s": spec.warmup_s,
        "duration_s": spec.duration_s,
        "seed": spec.seed,
        "runs": runs,
    }
