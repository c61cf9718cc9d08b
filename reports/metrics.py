"""The metrics the gate, the dashboard and the summary read from a record, defined once.

A gated metric says which way is worse, where its nightly value is, and where its per-round samples are (None
for a metric read once a night, like peak memory): the gate tests samples with Mann–Whitney, single readings
against the series' noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def peak_mb(record: dict) -> float | None:
    """The cell's peak memory in MiB: NVML's device-used peak on a GPU (what nvidia-smi shows), else torch's
    allocator peak, else the host's peak RSS (a CPU cell)."""
    mem = record.get("memory") or {}
    for key in ("device_used_peak_mb", "torch_max_allocated_mb", "host_peak_rss_mb"):
        if mem.get(key):
            return float(mem[key])
    return None


def latency_samples(record: dict) -> list[float] | None:
    return record["latency_ms"].get("samples")


def throughput_samples(record: dict) -> list[float] | None:
    # Each round's own throughput: the batch over that round's latency, as the record's figure is at the p50.
    samples = latency_samples(record)
    batch = record["cell"]["batch"]
    return None if samples is None else [batch * 1000.0 / s for s in samples]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    worse_if_higher: bool
    value: Callable[[dict], float | None]
    samples: Callable[[dict], list[float] | None] | None  # None: one reading a night, no samples


CELL_METRICS = (
    Metric("p50_ms", "ms", True, lambda r: r["latency_ms"]["p50"], latency_samples),
    Metric("throughput", "seq/s", False, lambda r: r["throughput"]["sequences_per_s"], throughput_samples),
    Metric("peak_mb", "MiB", True, peak_mb, None),
)
KERNEL_METRICS = (
    Metric("median_us", "µs", True, lambda r: r.get("median_us"), lambda r: r.get("samples_us")),
)
METRIC_NAMES = tuple(m.name for m in CELL_METRICS + KERNEL_METRICS)


def oracle_state(record: dict) -> dict:
    """What the correctness verdict compares: pass/fail, errors and the tolerance they were held to."""
    num = record.get("numerics")
    if num is None:  # a kernel micro-benchmark record: checked against the fp32 reference before timing
        return {
            "passed": "error" not in record,
            "message": record.get("error", "within tolerance"),
            "errors": {},
            "tolerance": {},
        }
    errors = {
        "max_abs_err": num.get("max_abs_err"),
        "max_rel_err": num.get("max_rel_err"),
        "topk_agreement": num.get("topk_agreement"),
    }
    return {
        "passed": bool(num["passed"]),
        "message": num.get("message", ""),
        "errors": errors,
        "tolerance": num.get("tolerance") or {},
    }
