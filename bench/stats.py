"""Pure statistics over latency samples: percentiles and a bootstrap interval. No backend, no torch."""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import fmean, pstdev


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not samples:
        raise ValueError("percentile of no samples; time at least one round")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} is outside 0..100")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99, mean, min, max, stdev and count of latency samples in milliseconds."""
    return {
        "p50": percentile(samples_ms, 50),
        "p90": percentile(samples_ms, 90),
        "p99": percentile(samples_ms, 99),
        "mean": fmean(samples_ms),
        "min": min(samples_ms),
        "max": max(samples_ms),
        "stdev": pstdev(samples_ms) if len(samples_ms) > 1 else 0.0,
        "n": len(samples_ms),
    }


def bootstrap_ci(samples: Sequence[float], stat=lambda xs: percentile(xs, 50), *, confidence: float = 0.95,
                 resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of `stat` (the median by default), seeded for repeatability."""
    if not samples:
        raise ValueError("bootstrap of no samples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be between 0 and 1")
    rng = random.Random(seed)
    n = len(samples)
    values = sorted(stat([samples[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1 - confidence) / 2 * 100
    return percentile(values, tail), percentile(values, 100 - tail)


def throughput(batch: int, latency_ms: float) -> float:
    """Sequences per second at one call of `batch` sequences taking `latency_ms`."""
    if latency_ms <= 0:
        raise ValueError(f"latency_ms={latency_ms} must be positive")
    return batch * 1000.0 / latency_ms
