"""One scenario cell: QSL → SUT → calibration → LoadGen performance run(s) (the Server peak search) → accuracy
run → the record's `scenario` section.

What the cell's record takes from here: `latency_ms` is the per-sample latency the SUT saw in the reported
performance run (from LoadGen's issue_query call to QuerySamplesComplete, every sample, bench.stats), which is
also what pytest-benchmark's stats hold (the samples are replayed through `benchmark.pedantic` with the cell's
sample clock); LoadGen's own percentiles, which count from each query's scheduled time, are
`scenario.result.latency_ms`. `throughput.sequences_per_s` is LoadGen's samples/s. `numerics` folds the
accuracy run's verdict over every sample into the first call's.

LoadGen's logs go to `<--benchmark-json without .json>.loadgen/<cell id>/<run>/` (run: performance,
accuracy, server-peak/probe-N-QPSqps), their paths in `scenario.logs`; without --benchmark-json into a
temporary folder that is removed when the cell ends (`scenario.logs.kept: false`).
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from genrec_bench.bench.loadgen import INSTALL_HINT, accuracy, logs
from genrec_bench.bench.loadgen.peak import find_peak
from genrec_bench.bench.loadgen.qsl import library
from genrec_bench.bench.loadgen.settings import SERVER_START, Calibration, requested, to_test_settings
from genrec_bench.bench.loadgen.sut_batcher import BatcherSUT, default_buckets
from genrec_bench.bench.loadgen.sut_served import ServedSUT
from genrec_bench.bench.oracle import Numerics
from genrec_bench.bench.stats import thin
from genrec_bench.bench.timing import SAMPLE_CLOCK, TimingResult
from genrec_bench.matrices.errors import BackendError, BackendUnavailable
from genrec_bench.matrices.scenario import ScenarioSpec, scenario_spec

REPLAY_LIMIT = 1_000_000  # samples replayed into pytest-benchmark at most (evenly spaced beyond)
# Reasons LoadGen gives when only its advance guess of the system's speed was off (settings.py): worth one
# rerun with the speed the first run measured, when the guess was ours.
CALIBRATION_MISSES = ("min duration not met",)


@dataclass
class ScenarioOutcome:
    """What the cell's record takes from a scenario (see the module docstring)."""

    record: dict
    numerics: Numerics | None  # the accuracy run's verdict, None when it did not run
    timing: TimingResult  # the reported run's per-sample latencies, as replayed to pytest-benchmark
    samples_per_s: float
    mean_history: float  # of the Query Sample Library's users


class LogFolder:
    """Where one cell's LoadGen logs go (see the module docstring)."""

    def __init__(self, results_path: str | None, cell_id: str):
        self.kept = bool(results_path)
        if self.kept:
            self.root = (
                Path(results_path).with_suffix("").with_name(Path(results_path).stem + ".loadgen") / cell_id
            )
            shutil.rmtree(self.root, ignore_errors=True)  # a rerun of the cell replaces its logs
            self.root.mkdir(parents=True)
        else:
            self.root = Path(tempfile.mkdtemp(prefix="genrec-loadgen-"))

    def run(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def finish(self) -> None:
        if not self.kept:
            shutil.rmtree(self.root, ignore_errors=True)


class LoadGenSession:
    """LoadGen's SUT and QSL handles around our SUT, and one run at a time."""

    def __init__(self, lg, sut, count: int):
        self.lg, self.sut = lg, sut
        self._noop = lambda samples: None  # LoadGen keeps only a reference: keep the callable alive
        self.sut_handle = lg.ConstructSUT(sut.issue, sut.flush)
        self.qsl_handle = lg.ConstructQSL(count, count, self._noop, self._noop)

    def run(self, asked: dict, folder: Path, *, accuracy: bool, scenario: str):
        """One StartTest; returns the SUT's completions. Failed calls fail the cell here, with the first
        error."""
        lg = self.lg
        output = lg.LogOutputSettings()
        output.outdir, output.copy_summary_to_stdout = str(folder), False
        log_settings = lg.LogSettings()
        log_settings.log_output, log_settings.enable_trace = output, False
        self.sut.start(lg, accuracy=accuracy, wait=scenario == "server")
        began = time.perf_counter()
        try:
            lg.StartTestWithLogSettings(
                self.sut_handle, self.qsl_handle, to_test_settings(lg, asked, accuracy=accuracy), log_settings
            )
        finally:
            self.sut.stop()
        done = self.sut.completions
        done.wall_s = time.perf_counter() - began
        if done.errors:
            raise BackendError(
                f"loadgen | {done.errors} call(s) of the {'accuracy' if accuracy else 'performance'}"
                f" run failed, first: {done.first_error} (logs: {folder})"
            )
        return done

    def close(self):
        self.lg.DestroyQSL(self.qsl_handle)
        self.lg.DestroySUT(self.sut_handle)


def import_loadgen():
    try:
        return importlib.import_module("mlperf_loadgen")
    except ImportError:
        raise BackendUnavailable(
            "loadgen", f"MLPerf LoadGen (mlperf_loadgen) is not installed; {INSTALL_HINT}"
        ) from None


def make_sut(session, cell, qsl, spec: ScenarioSpec):
    """The served SUT for a session behind a server, else the batcher."""
    target = session.served_target()
    if target is not None:
        return ServedSUT(session, target, qsl, max_request=cell.batch)
    return BatcherSUT(
        session, qsl, default_buckets(cell.batch, spec.batcher.buckets), spec.batcher.max_wait_ms
    )


def calibrate(sut, cell, spec: ScenarioSpec) -> Calibration:
    """A few back-to-back calls: one user, one MultiStream query, the cell's largest call."""
    per_query = min(spec.multistream.samples_per_query, cell.batch)
    return Calibration(
        single_ms=sut.calls_ms(1),
        query_ms=sut.calls_ms(per_query),
        batch=cell.batch,
        batch_ms=sut.calls_ms(cell.batch),
    )


def run_scenario(benchmark, session, cell, context, tolerance: dict) -> ScenarioOutcome:
    """Run `cell.scenario` over `session`: performance (or the Server peak search), then accuracy; the
    reported run's samples go to `benchmark`."""
    lg = import_loadgen()
    spec = scenario_spec(context.matrix if context else None)
    qsl = library(cell.model, cell.phase, cell.seq_len, spec.performance_sample_count, spec.seed)
    if spec.accuracy:
        qsl.reference()  # the fp32 reference of every sample, before anything is measured
    folder = LogFolder(context.results_path if context else None, cell.id)
    sut = loadgen = None
    try:
        sut = make_sut(session, cell, qsl, spec)  # compiles / captures the batcher's buckets
        cal = calibrate(sut, cell, spec)
        loadgen = LoadGenSession(lg, sut, qsl.count)
        record = {
            "name": cell.scenario,
            "sut": sut.describe(),
            "calibration": cal.as_dict(),
            "qsl": {"count": qsl.count, "seed": qsl.seed, "mean_history": qsl.mean_history},
        }
        if cell.scenario == "server" and spec.server.peak.enabled:
            result, done, asked = _peak(loadgen, spec, cal, sut.kind, qsl.count, folder, record)
        else:
            result, done, asked = _perform(
                loadgen, cell.scenario, spec, cal, sut.kind, qsl.count, folder, record
            )
        record |= {"requested": asked, "result": result, "loadgen_version": result.pop("loadgen_version")}
        record["sut"] |= {
            "calls": len(done.call_sizes),
            "mean_users_per_call": sum(done.call_sizes) / max(1, len(done.call_sizes)),
        }
        numerics = None
        if spec.accuracy:
            run = folder.run("accuracy")
            loadgen.run(asked, run, accuracy=True, scenario=cell.scenario)
            numerics, record["accuracy"] = accuracy.check(logs.accuracy_entries(run), qsl, tolerance)
            record["accuracy"] |= {"checked": True, "log": str(run / logs.ACCURACY)}
        else:
            record["accuracy"] = {"checked": False, "reason": "scenario.accuracy is false in the matrix"}
        record["logs"] = {"kept": folder.kept, "dir": str(folder.root)}
    finally:
        if loadgen is not None:
            loadgen.close()
        if sut is not None:
            sut.close()
        folder.finish()
    samples_ms = done.latencies_ms()
    if not samples_ms:
        raise BackendError(
            f"loadgen | {cell.id}: the reported run completed no samples (logs: {folder.root})"
        )
    timing = replay(benchmark, samples_ms)
    # LoadGen's figure; a run whose log lacks one falls back on what the SUT completed over the run's wall
    # time.
    per_second = result["samples_per_s"] or len(samples_ms) / done.wall_s
    return ScenarioOutcome(record, numerics, timing, per_second, qsl.mean_history)


def _perform(loadgen, scenario, spec, cal, sut_kind, count, folder, record):
    """One performance run, rerun once when only our guess of the system's speed made it INVALID."""
    asked = requested(scenario, spec, cal, sut_kind, count)
    run = folder.run("performance")
    done = loadgen.run(asked, run, accuracy=False, scenario=scenario)
    result = logs.result(scenario, run)
    retry = _recalibrated(scenario, spec, asked, result)
    if retry is not None:
        record["attempts"] = [
            {"requested": asked, "validity": result["validity"], "reasons": result["reasons"]}
        ]
        asked, run = retry, folder.run("performance-rerun")
        done = loadgen.run(asked, run, accuracy=False, scenario=scenario)
        result = logs.result(scenario, run)
    result["log_dir"] = str(run)
    return result, done, asked


def _recalibrated(scenario: str, spec: ScenarioSpec, asked: dict, result: dict) -> dict | None:
    """Settings for a rerun at the speed LoadGen just measured, or None (valid, a real failure, or the
    matrix's own numbers)."""
    if result["valid"] or not any(r in result["reasons"] for r in CALIBRATION_MISSES):
        return None
    block = spec.of(scenario)
    if scenario == "offline" and block.expected_qps is None and result["samples_per_s"]:
        return asked | {"expected_qps": result["samples_per_s"] * 1.5}
    if (
        scenario in ("singlestream", "multistream")
        and block.expected_latency_ms is None
        and result["latency_ms"]["min"]
    ):
        return asked | {"expected_latency_ms": result["latency_ms"]["min"] * 0.5}
    return None


def _peak(loadgen, spec, cal, sut_kind, count, folder, record):
    """The Server peak search; the reported run is the highest VALID probe (the last probe when none was)."""
    peak, runs = spec.server.peak, {}

    def probe(qps: float):
        asked = requested("server", spec, cal, sut_kind, count, target_qps=qps)
        run = folder.run(f"server-peak/probe-{len(runs) + 1}-{qps:.0f}qps")
        done = loadgen.run(asked, run, accuracy=False, scenario="server")
        result = logs.result("server", run) | {"log_dir": str(run)}
        runs[qps] = (result, done, asked)
        return result["valid"], {
            "validity": result["validity"],
            "reasons": result["reasons"],
            "completed_samples_per_s": result["samples_per_s"],
            "latency_ms_at_percentile": _at_percentile(result),
            "log_dir": str(run),
        }

    start = min(max(spec.server.target_qps or cal.capacity * SERVER_START, peak.min_qps), peak.max_qps)
    search = find_peak(
        probe,
        start=start,
        growth=peak.growth,
        tolerance=peak.tolerance,
        max_probes=peak.max_probes,
        min_qps=peak.min_qps,
        max_qps=peak.max_qps,
    )
    record["peak"] = search | {
        "latency_bound_ms": spec.server.latency_bound_ms,
        "percentile": spec.server.percentile,
    }
    chosen = search["peak_qps"] if search["peak_qps"] is not None else search["probes"][-1]["qps"]
    return runs[chosen]


def _at_percentile(result: dict) -> float | None:
    """LoadGen's latency at the Server's target percentile (its own p99 for 0.99, p90 for 0.9, ...)."""
    key = f"p{result['target']['percentile'] * 100:g}"
    return result["latency_ms"].get(key)


class ScenarioTiming(TimingResult):
    """The record's `timer` of a scenario cell: its samples are the SUT's per-sample latencies."""

    def record(self) -> dict:
        return {
            "method": self.method,
            "rounds": self.rounds,
            "warmup_rounds": 0,
            "description": "per-sample latency the SUT saw in LoadGen's reported performance run: "
            "perf_counter_ns from LoadGen's issue_query call to QuerySamplesComplete",
            "pytest_benchmark": "benchmark.pedantic replays these samples with timer=sample_clock: its stats "
            "are these samples",
        }


def replay(benchmark, samples_ms: list[float]) -> TimingResult:
    """Hand the scenario's per-sample latencies to pytest-benchmark as its rounds (the cell's sample clock),
    so its stats are these samples, as for a per-call cell."""
    samples = thin(samples_ms, REPLAY_LIMIT)
    feed = iter(samples)

    def one_sample():
        SAMPLE_CLOCK.advance(next(feed))

    benchmark.pedantic(one_sample, rounds=len(samples), warmup_rounds=0, iterations=1)
    return ScenarioTiming(
        samples_ms=samples, rounds=len(samples), warmup_rounds=0, method="loadgen_sample", last_result=None
    )
