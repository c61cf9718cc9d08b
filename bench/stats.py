"""Statistics over samples: the one module that cells, serving scenarios, kernel micro-benchmarks and reports use.

Pure functions over numbers, built on numpy and scipy; no backend, no torch, nothing timed. Percentiles
interpolate linearly between order statistics (numpy's default), so every figure of a run is computed the same
way wherever it is printed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

#: The percentiles a latency summary reports.
PERCENTILES = (50, 90, 99)


def _array(samples: Sequence[float], what: str = "samples") -> np.ndarray:
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers, got shape {values.shape}")
    return values


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    values = _array(samples)
    if values.size == 0:
        raise ValueError("percentile of no samples; time at least one round")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} is outside 0..100")
    return float(np.percentile(values, q))


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p90/p99, mean, min, max, stdev (population) and count of latency samples in milliseconds; every
    statistic is None for no samples (a serving level where no request finished)."""
    values = _array(samples_ms)
    if values.size == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "min": None, "max": None, "stdev": None,
                "n": 0}
    p50, p90, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    return {"p50": p50, "p90": p90, "p99": p99, "mean": float(values.mean()), "min": float(values.min()),
            "max": float(values.max()), "stdev": float(values.std()), "n": int(values.size)}


def median_ci(samples: Sequence[float], *, confidence: float = 0.95, resamples: int = 1000,
              seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (scipy.stats.bootstrap), seeded for repeatability;
    a single sample is its own interval."""
    values = _array(samples)
    if values.size == 0:
        raise ValueError("bootstrap of no samples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be between 0 and 1")
    if values.size == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    result = sps.bootstrap((values,), np.median, confidence_level=confidence, n_resamples=resamples,
                           method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def throughput(items: int, latency_ms: float) -> float:
    """Items (sequences, requests) per second when one call of `items` takes `latency_ms`."""
    if not latency_ms > 0 or not math.isfinite(latency_ms):
        raise ValueError(f"latency_ms={latency_ms} must be positive and finite")
    return items * 1000.0 / latency_ms


def thin(samples: Sequence[float], limit: int) -> list[float]:
    """At most `limit` of `samples`, kept in time order: every one when they fit, else evenly spaced ones (the
    first and last included), so a long run's drift stays visible and the distribution is sampled uniformly."""
    if limit < 1:
        raise ValueError(f"limit={limit} must be at least 1")
    values = list(samples)
    if len(values) <= limit:
        return values
    index = np.linspace(0, len(values) - 1, limit).round().astype(int)
    return [values[i] for i in index]
