"""Timing a session's closure through pytest-benchmark's public API (`benchmark.pedantic` and `timer=`).

Each round's sample is taken the way the session needs — CUDA events for `cuda_event` sessions,
synchronize-then-clock otherwise — and that same sample is what pytest-benchmark records: the cell's benchmark
mark sets `timer=SAMPLE_CLOCK`, a clock that advances by exactly the sample the round just took. So the JSON's
`stats`, `pytest-benchmark compare`, `--benchmark-compare-fail` and the record's percentiles are one set of
numbers (pytest-benchmark reads its timer right before and right after the target).

`after_round` sees every call's output outside the timed interval — each warm-up call, and each timed round
right after it (pedantic's teardown): the oracle's per-call check goes there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from genrec_bench.matrices.loader import Timing

TIMER_METHODS = {
    "cuda_event": "CUDA events around the closure on the current stream, then event.synchronize()",
    "sync_clock": "perf_counter around the closure followed by a device synchronize",
    "host_clock": "perf_counter around the closure (it returns when its work is done)",
}


class SampleClock:
    """pytest-benchmark's `timer=`: reads the sum of the samples taken so far, in seconds, so the duration it
    measures across one round is that round's own sample."""

    __name__ = "sample_clock"

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1e3


SAMPLE_CLOCK = SampleClock()


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
            "pytest_benchmark": "benchmark.pedantic(iterations=1) with timer=sample_clock: its stats are "
            "these samples",
        }


def _sampler(run: Callable[[], Any], method: str, synchronize: Callable[[], None], sink: list[float]):
    if method == "cuda_event":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def target():
            start.record()
            out = run()
            end.record()
            end.synchronize()
            sample = start.elapsed_time(end)
            sink.append(sample)
            SAMPLE_CLOCK.advance(sample)
            return out

        return target

    def target():
        t0 = time.perf_counter()
        out = run()
        synchronize()
        sample = (time.perf_counter() - t0) * 1e3
        sink.append(sample)
        SAMPLE_CLOCK.advance(sample)
        return out

    return target


def plan_rounds(timing: Timing, warm_ms: float) -> int:
    """Rounds to time: `timing.rounds`, fewer when they would pass max_time_s, never under min_rounds."""
    if warm_ms <= 0:
        return timing.rounds
    fit = int(timing.max_time_s * 1000 / warm_ms)
    return max(timing.min_rounds, min(timing.rounds, fit))


def time_closure(
    benchmark,
    run: Callable[[], Any],
    method: str,
    synchronize: Callable[[], None],
    timing: Timing,
    after_round: Callable[[Any], None] | None = None,
    before_timed: Callable[[], None] | None = None,
) -> TimingResult:
    """Warm up, size the rounds to the time budget, then time through `benchmark.pedantic`; `after_round(out)`
    sees each warm-up call's and timed round's output, outside the timed interval; `before_timed` runs between
    warm-up and timed rounds (outside any timed call), e.g. to reset a cache's counters."""
    samples: list[float] = []
    target = _sampler(run, method, synchronize, samples)
    outputs: list[Any] = []

    def timed():
        outputs[:] = [target()]
        return outputs[0]

    def teardown():
        if after_round is not None:
            after_round(outputs[0])

    for _ in range(timing.warmup_rounds):
        out = target()
        if after_round is not None:
            after_round(out)
    warm_ms = min(samples) if samples else 0.0
    rounds = plan_rounds(timing, warm_ms)
    samples.clear()
    if before_timed is not None:
        before_timed()
    last = benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1, teardown=teardown)
    return TimingResult(
        samples_ms=list(samples),
        rounds=rounds,
        warmup_rounds=timing.warmup_rounds,
        method=method,
        last_result=last,
    )
