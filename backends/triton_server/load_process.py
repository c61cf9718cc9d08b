"""One load-generator process for a Triton target: asyncio tritonclient (gRPC or HTTP) in a closed or an open
loop.

`python backends/triton_server/load_process.py` reads a JSON job on stdin and writes a JSON result on stdout.
Several of them run side by side when one Python process cannot keep the server busy (the GIL caps one process
at a few thousand requests/s). All processes share CLOCK_MONOTONIC, so they measure one common window:
`start_at + warmup_s … + measure_s`.

Handshake: the job is one JSON line on stdin; once connected the process prints `ready`, then reads one more
line, the common `start_at`, so slow imports in one process do not shorten its window.
Job: protocol, url, model, inputs (path of an .npz of the request's arrays), outputs, kind ("closed" with
`concurrency`, or "poisson" with `rate` and `seed`), warmup_s, measure_s.
Result: latencies_ms of the requests that finished (closed) or arrived (poisson) inside the window, completed,
errors, first_error, and for poisson the arrivals and the worst issue lag.
A failed request ends this process's loop at once: a dead server must fail the cell fast, not time out.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import numpy as np

if __package__:
    from genrec_bench.backends.triton_server.client import infer_args, module
else:
    # run as a script (bench/serving/scenarios.py does): importing the backends package would import torch
    # for nothing
    from client import infer_args, module


async def _client(job):
    mod = module(job["protocol"], aio=True)
    client = mod.InferenceServerClient(url=job["url"])
    arrays = dict(np.load(job["inputs"]))
    inputs, outputs = infer_args(mod, job["protocol"], arrays, job["outputs"])
    await client.is_server_live()  # connect before the handshake, not inside the window
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    job["start_at"] = float(sys.stdin.readline())
    return client, inputs, outputs


async def closed_loop(job) -> dict:
    client, inputs, outputs = await _client(job)
    start = job["start_at"] + job["warmup_s"]
    end = start + job["measure_s"]
    latencies, state = [], {"errors": 0, "first_error": None, "stop": False}

    async def user():
        while not state["stop"]:
            t0 = time.monotonic()
            if t0 >= end:
                return
            try:
                await client.infer(job["model"], inputs, outputs=outputs)
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which names the cell
                state["errors"] += 1
                state["first_error"] = state["first_error"] or f"{type(exc).__name__}: {exc}"
                state["stop"] = True
                return
            t1 = time.monotonic()
            if start <= t1 <= end:
                latencies.append((t1 - t0) * 1e3)

    await _sleep_until(job["start_at"])
    try:
        await asyncio.gather(*(user() for _ in range(job["concurrency"])))
    finally:
        await client.close()
    return {
        "latencies_ms": latencies,
        "completed": len(latencies),
        "errors": state["errors"],
        "first_error": state["first_error"],
    }


async def poisson(job) -> dict:
    client, inputs, outputs = await _client(job)
    rng = np.random.default_rng(job["seed"])
    horizon = job["warmup_s"] + job["measure_s"]
    gaps = rng.exponential(1.0 / job["rate"], size=int(job["rate"] * horizon * 1.5) + 16)
    arrivals = np.cumsum(gaps)
    arrivals = arrivals[arrivals < horizon] + job["start_at"]
    start, end = job["start_at"] + job["warmup_s"], job["start_at"] + horizon
    latencies, lags, state = [], [], {"errors": 0, "first_error": None}
    pending = set()

    async def one(scheduled: float):
        try:
            await client.infer(job["model"], inputs, outputs=outputs)
        except Exception as exc:  # noqa: BLE001
            state["errors"] += 1
            state["first_error"] = state["first_error"] or f"{type(exc).__name__}: {exc}"
            return
        if start <= scheduled < end:
            # From the scheduled arrival, not the send: a client that falls behind shows as latency
            # (no coordinated omission).
            latencies.append((time.monotonic() - scheduled) * 1e3)

    for scheduled in arrivals:
        if state["errors"]:
            break
        await _sleep_until(scheduled)
        if start <= scheduled < end:
            lags.append((time.monotonic() - scheduled) * 1e3)
        task = asyncio.ensure_future(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)
    await client.close()
    in_window = int(((arrivals >= start) & (arrivals < end)).sum())
    return {
        "latencies_ms": latencies,
        "completed": len(latencies),
        "arrivals": in_window,
        "errors": state["errors"],
        "first_error": state["first_error"],
        "max_issue_lag_ms": max(lags) if lags else 0.0,
        "p99_issue_lag_ms": float(np.percentile(lags, 99)) if lags else 0.0,
    }


async def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def main() -> int:
    job = json.loads(sys.stdin.readline())
    run = closed_loop if job["kind"] == "closed" else poisson
    result = asyncio.run(run(job))
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
