"""Timing a session's closure through pytest-benchmark's public API (`benchmark.pedantic`).

The target handed to pedantic runs the closure and waits for its device work, so pytest-benchmark's own
statistics measure finished work too. Inside it we keep our own per-round samples — CUDA-event times for
`cuda_event` sessions, synchronize-then-clock otherwise — from which the record's percentiles come.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.stats import summarize
from matrices.loader import Timing

TIMER_METHODS = {
    "cuda_event": "CUDA events around the closure on the current stream, then event.synchronize()",
    "sync_clock": "perf_counter around the closure followed by a device synchronize",
    "host_clock": "perf_counter around the closure (it returns when its work is done)",
}


@dataclass
class TimingResult:
    samples_ms: list[float]
    rounds: int
    warmup_rounds: int
    method: str
    last_result: Any

    def record(self) -> dict:
        return {
            "method": self.method,
            "description": TIMER_METHODS[self.method],
            "rounds": self.rounds,
            "warmup_rounds": self.warmup_rounds,
            "pytest_benchmark": "benchmark.pedantic(iterations=1), target includes the device wait",
        }


def _sampler(run: Callable[[], Any], method: str, synchronize: Callable[[], None], sink: list[float]):
    if method == "cuda_event":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def target():
            start.record()
            out = run()
            end.record()
            end.synchronize()
            sink.append(start.elapsed_time(end))
            return out

        return target

    def target():
        t0 = time.perf_counter()
        out = run()
        synchronize()
        sink.append((time.perf_counter() - t0) * 1e3)
        return out

    return target


def plan_rounds(timing: Timing, warm_ms: float) -> int:
    """Rounds to time: `timing.rounds`, fewer when they would pass max_time_s, never under min_rounds."""
    if warm_ms <= 0:
        return timing.rounds
    fit = int(timing.max_time_s * 1000 / warm_ms)
    return max(timing.min_rounds, min(timing.rounds, fit))


def time_closure(benchmark, run: Callable[[], Any], method: str, synchronize: Callable[[], None],
                 timing: Timing, before_timed: Callable[[], None] | None = None) -> TimingResult:
    """Warm up, size the rounds to the time budget, then time through `benchmark.pedantic`; `before_timed`
    runs between the two (outside any timed call), e.g. to reset a cache's counters."""
    samples: list[float] = []
    target = _sampler(run, method, synchronize, samples)
    for _ in range(timing.warmup_rounds):
        target()
    warm_ms = min(samples) if samples else 0.0
    rounds = plan_rounds(timing, warm_ms)
    samples.clear()
    if before_timed is not None:
        before_timed()
    last = benchmark.pedantic(target, rounds=rounds, warmup_rounds=0, iterations=1)
    return TimingResult(samples_ms=list(samples), rounds=rounds, warmup_rounds=timing.warmup_rounds,
                        method=method, last_result=last)


def latency_record(result: TimingResult) -> dict:
    return summarize(result.samples_ms)
