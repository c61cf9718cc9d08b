"""Statistics over samples: the one module that cells, serving scenarios, kernel micro-benchmarks and reports
use.

Pure functions over numbers, built on numpy and scipy; no backend, no torch, nothing timed. Percentiles
interpolate linearly between order statistics (numpy's default), so every figure of a run is computed the same
way wherever it is printed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
        return {
            "p50": None,
            "p90": None,
            "p99": None,
            "mean": None,
            "min": None,
            "max": None,
            "stdev": None,
            "n": 0,
        }
    p50, p90, p99 = (float(v) for v in np.percentile(values, PERCENTILES))
    return {
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
        "stdev": float(values.std()),
        "n": int(values.size),
    }


def median_ci(
    samples: Sequence[float], *, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (scipy.stats.bootstrap), seeded for
    repeatability; a single sample is its own interval."""
    values = _array(samples)
    if values.size == 0:
        raise ValueError("bootstrap of no samples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be between 0 and 1")
    if values.size == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    result = sps.bootstrap(
        (values,),
        np.median,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def throughput(items: int, latency_ms: float) -> float:
    """Items (sequences, requests) per second when one call of `items` takes `latency_ms`."""
    if not latency_ms > 0 or not math.isfinite(latency_ms):
        raise ValueError(f"latency_ms={latency_ms} must be positive and finite")
    return items * 1000.0 / latency_ms


def thin(samples: Sequence[float], limit: int) -> list[float]:
    """At most `limit` of `samples`, kept in time order: every one when they fit, else evenly spaced ones (the
    first and last included), so a long run's drift stays visible and the distribution is sampled
    uniformly."""
    if limit < 1:
        raise ValueError(f"limit={limit} must be at least 1")
    values = list(samples)
    if len(values) <= limit:
        return values
    index = np.linspace(0, len(values) - 1, limit).round().astype(int)
    return [values[i] for i in index]


# The regression gate's statistics (reports/gate.py applies them per cell and metric; the tests check them on
# synthetic histories). Every function takes numpy arrays and an `axis`, so one call judges one cell or, in
# the tests, thousands of simulated cell-nights at once.

#: What each gate verdict means, most severe first.
GATE_VERDICTS = {
    "regression": "worse by more than the threshold, significant, and surviving Benjamini–Hochberg",
    "suspect": "worse by more than the threshold, but not significant after Benjamini–Hochberg",
    "improvement": "better by more than the threshold, and significant",
    "ok": "within the threshold of the baseline",
}


@dataclass(frozen=True)
class GateSettings:
    """The gate's knobs. A change must exceed max(min_effect, noise_factor × the series' night-to-night noise,
    estimated from its last `window` nightly values); fewer than `min_points` of them is not enough
    history."""

    alpha: float = 0.01
    min_effect: float = 0.05
    noise_factor: float = 3.0
    window: int = 14
    min_points: int = 5

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha={self.alpha} must be between 0 and 1")
        if self.min_effect < 0 or self.noise_factor < 0:
            raise ValueError(
                f"min_effect={self.min_effect} and noise_factor={self.noise_factor} must be >= 0"
            )
        if self.window < 1 or not 1 <= self.min_points <= self.window:
            raise ValueError(f"min_points={self.min_points} must be between 1 and window={self.window}")


def relative_noise(levels, axis: int = -1) -> np.ndarray:
    """Night-to-night noise of a series as a fraction of its level: 1.4826 · MAD of the nightly values over
    their median (scipy.stats.median_abs_deviation with scale='normal', a standard deviation for normal
    noise), so one night that spiked neither widens nor narrows it. One value has no spread: its noise is
    0."""
    values = np.asarray(levels, dtype=np.float64)
    return sps.median_abs_deviation(values, axis=axis, scale="normal") / np.median(values, axis=axis)


def relative_change(value, baseline_levels, axis: int = -1) -> np.ndarray:
    """Tonight's value against the median of the baseline's nightly values, as a fraction (0.1 = 10 %
    higher)."""
    return (
        np.asarray(value, dtype=np.float64) / np.median(np.asarray(baseline_levels, np.float64), axis=axis)
        - 1
    )


def change_threshold(noise, settings: GateSettings) -> np.ndarray:
    """The smallest change the gate acts on: max(min_effect, noise_factor × noise)."""
    return np.maximum(settings.min_effect, settings.noise_factor * np.asarray(noise, dtype=np.float64))


def shift_pvalue(tonight, baseline, *, alternative: str = "greater", axis: int = -1) -> np.ndarray:
    """One-sided Mann–Whitney U test (scipy.stats.mannwhitneyu) that tonight's samples are stochastically
    greater (`alternative='greater'`) or less than the baseline's; rank-based, so no distribution is assumed
    and a burst of slow rounds moves it little."""
    return sps.mannwhitneyu(tonight, baseline, alternative=alternative, axis=axis).pvalue


def sign_test_pvalue(tonight: Sequence[float], reference: float, *, alternative: str = "greater") -> float:
    """One-sided sign test (scipy.stats.binomtest) that tonight's samples lie above (`'greater'`) or below a
    reference median: the test left when the baseline kept its median but not its samples (schema v1 records).
    It takes the reference as exact, so it is a little bolder than Mann–Whitney would be."""
    values = _array(tonight, "tonight")
    above, below = int((values > reference).sum()), int((values < reference).sum())
    if above + below == 0:
        return 1.0
    return float(sps.binomtest(above, above + below, 0.5, alternative=alternative).pvalue)


def level_pvalue(change, noise, *, worse_if_higher: bool = True) -> np.ndarray:
    """For a metric read once per night (peak memory): the one-sided normal tail (scipy.stats.norm.sf) of the
    change over the series' noise. A series with no noise at all makes any change in that direction
    certain."""
    change = np.asarray(change, dtype=np.float64) * (1 if worse_if_higher else -1)
    noise = np.asarray(noise, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sps.norm.sf(change / noise)
    return np.where(noise > 0, p, np.where(change > 0, 0.0, 1.0))


def fdr_adjust(pvalues, axis: int = -1) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scipy.stats.false_discovery_control) across the run's tests."""
    values = np.asarray(pvalues, dtype=np.float64)
    if values.size == 0:
        return values
    return sps.false_discovery_control(values, axis=axis, method="bh")


def classify(worse_change, threshold, p_worse, q_worse, p_better, alpha: float) -> np.ndarray:
    """The verdict (GATE_VERDICTS) of each test: `worse_change` is the change in the metric's bad direction
    (+0.1 = 10 % worse), `p_worse`/`q_worse` the one-sided p-value that it got worse and its BH-adjusted
    value, `p_better` the one-sided p-value that it got better."""
    worse_change, threshold = np.asarray(worse_change), np.asarray(threshold)
    worse = worse_change > threshold
    regression = worse & (np.asarray(p_worse) < alpha) & (np.asarray(q_worse) < alpha)
    improvement = (worse_change < -threshold) & (np.asarray(p_better) < alpha)
    return np.select([regression, worse, improvement], ["regression", "suspect", "improvement"], default="ok")


def assess_samples(
    tonight_level,
    tonight_samples,
    window_levels,
    latest_samples,
    settings: GateSettings,
    *,
    worse_if_higher: bool = True,
    axis: int = -1,
) -> dict[str, np.ndarray]:
    """One metric with per-round samples (latency, throughput): the change against the baseline window's
    median in the bad direction, the threshold from the window's noise, and the one-sided Mann–Whitney
    p-values of tonight's samples against the latest baseline night's (`p_worse`, `p_better`). The run's
    p_worse values then go through `fdr_adjust` together and `classify` gives the verdicts."""
    sign = 1 if worse_if_higher else -1
    window = np.asarray(window_levels, dtype=np.float64)
    worse, better = ("greater", "less") if worse_if_higher else ("less", "greater")
    return {
        "change": sign * relative_change(tonight_level, window, axis=axis),
        "threshold": change_threshold(relative_noise(window, axis=axis), settings),
        "p_worse": shift_pvalue(tonight_samples, latest_samples, alternative=worse, axis=axis),
        "p_better": shift_pvalue(tonight_samples, latest_samples, alternative=better, axis=axis),
    }
