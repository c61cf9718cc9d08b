"""The matrix's `scenario:` settings and a calibration of the cell → LoadGen TestSettings.

LoadGen generates a run's queries in advance from what it expects of the system: SingleStream and MultiStream
from an expected latency, Offline from an expected QPS (one query of expected_qps × min_duration samples).
A system faster than expected runs out of queries (SingleStream/MultiStream) or finishes too soon (Offline)
and the run is INVALID for that alone. So unless the section sets them, they come from a calibration — a few
timed calls of the cell's own SUT — with headroom: latency expected at half what was timed, Offline QPS at
OFFLINE_HEADROOM × the timed capacity (more queries than needed cost only memory; an Offline query
longer than min_duration only lengthens the run). The Server target, when not set, is a quarter of the
capacity: back-to-back calls of full batches overstate what Poisson arrivals of single samples can be served
at within a latency bound, and the peak search only starts there (it grows by itself).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from genrec_bench.matrices.scenario import ScenarioSpec

LG_SCENARIOS = {
    "singlestream": "SingleStream",
    "multistream": "MultiStream",
    "server": "Server",
    "offline": "Offline",
}
LATENCY_HEADROOM = 0.5
OFFLINE_HEADROOM = {
    "batcher": 1.5,
    "served": 4.0,
}  # a server's concurrency beats its sequential calls by more
SERVER_START = 0.25


@dataclass(frozen=True)
class Calibration:
    """What a few back-to-back calls of the SUT took: one user, one MultiStream query, the largest call."""

    single_ms: float
    query_ms: float
    batch: int
    batch_ms: float

    @property
    def capacity(self) -> float:
        """Samples per second of back-to-back largest calls."""
        return self.batch * 1000.0 / self.batch_ms

    def as_dict(self) -> dict:
        return asdict(self) | {"capacity_samples_per_s": self.capacity}


def requested(
    scenario: str,
    spec: ScenarioSpec,
    cal: Calibration,
    sut_kind: str,
    qsl_count: int,
    target_qps: float | None = None,
) -> dict:
    """The settings a run asks LoadGen for (plain numbers, recorded as they are), `target_qps` overriding the
    Server target (peak-search probes)."""
    block = spec.of(scenario)
    out = {
        "scenario": LG_SCENARIOS[scenario],
        "min_duration_ms": block.min_duration_ms,
        "min_query_count": block.min_query_count,
        "performance_sample_count": qsl_count,
        "seed": spec.seed,
    }
    if scenario == "singlestream":
        out["expected_latency_ms"] = block.expected_latency_ms or cal.single_ms * LATENCY_HEADROOM
        out["percentile"] = block.percentile
    elif scenario == "multistream":
        out["samples_per_query"] = block.samples_per_query
        out["expected_latency_ms"] = block.expected_latency_ms or cal.query_ms * LATENCY_HEADROOM
        out["percentile"] = block.percentile
    elif scenario == "server":
        out["target_qps"] = target_qps or block.target_qps or cal.capacity * SERVER_START
        out["latency_bound_ms"] = block.latency_bound_ms
        out["percentile"] = block.percentile
    else:
        out["expected_qps"] = block.expected_qps or cal.capacity * OFFLINE_HEADROOM[sut_kind]
    return out


def to_test_settings(lg, asked: dict, *, accuracy: bool):
    """`requested()` as an mlperf_loadgen.TestSettings in performance or accuracy mode. The three seeds are
    the section's, so two runs of one cell issue the same samples on the same schedule."""
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, asked["scenario"])
    s.mode = lg.TestMode.AccuracyOnly if accuracy else lg.TestMode.PerformanceOnly
    s.min_duration_ms = int(asked["min_duration_ms"])
    s.min_query_count = int(asked["min_query_count"])
    s.performance_sample_count_override = int(asked["performance_sample_count"])
    s.qsl_rng_seed = s.sample_index_rng_seed = s.schedule_rng_seed = int(asked["seed"])
    if "expected_latency_ms" in asked and asked["scenario"] == "SingleStream":
        s.single_stream_expected_latency_ns = max(1, int(asked["expected_latency_ms"] * 1e6))
        s.single_stream_target_latency_percentile = asked["percentile"]
    if asked["scenario"] == "MultiStream":
        s.multi_stream_samples_per_query = int(asked["samples_per_query"])
        s.multi_stream_expected_latency_ns = max(1, int(asked["expected_latency_ms"] * 1e6))
        s.multi_stream_target_latency_percentile = asked["percentile"]
    if asked["scenario"] == "Server":
        s.server_target_qps = float(asked["target_qps"])
        s.server_target_latency_ns = int(asked["latency_bound_ms"] * 1e6)
        s.server_target_latency_percentile = asked["percentile"]
    if asked["scenario"] == "Offline":
        s.offline_expected_qps = float(asked["expected_qps"])
    return s
