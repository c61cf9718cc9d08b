"""One cell from start to record: draw inputs → prepare → run once → oracle → time → memory → extra_info.

The oracle judges the first call, every later call (outside the timed interval), a second input set and the
checks that need no second implementation (bench/checks.py); what really ran is checked against the cell's
label (bench/provenance.py). A verdict is raised only after the timing and the record are written, so a wrong
cell still leaves its numbers in the JSON (marked `numerics.passed: false`). A record is complete and valid or
absent: once a cell is timed, a failure in what follows still leaves a valid record, marked failed with why.
With pytest-benchmark disabled, a cell runs the oracle's checks only and records nothing. The cell's embedding
placement (its preset's, the matrix section's knobs, its label's placement and budget) travels with the model
it hands the backend.
"""

from __future__ import annotations

from collections.abc import Callable

from genrec_bench.backends import get_backend
from genrec_bench.backends.base import RunContext
from genrec_bench.bench.checks import RoundChecks, independent_checks
from genrec_bench.bench.env import environment
from genrec_bench.bench.loadgen import run_scenario
from genrec_bench.bench.memory import MemoryProbe
from genrec_bench.bench.oracle import Numerics, compare, worst
from genrec_bench.bench.provenance import contradictions, provenance
from genrec_bench.bench.record import build_record
from genrec_bench.bench.reference_model import model_for, reference
from genrec_bench.bench.serving import serving_record
from genrec_bench.bench.stats import latency_summary, median_ci, thin, throughput
from genrec_bench.bench.timing import TimingResult, time_closure
from genrec_bench.bench.tolerances import limits_for, tolerance_mismatch
from genrec_bench.kernels import DISPATCHED, dispatched_since
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendUnavailable, OracleMismatch
from genrec_bench.matrices.serving import serving_spec
from genrec_bench.models import draw, preset
from genrec_bench.models.embedding.spec import resolve

INPUT_SEED = 1234
STORED_SAMPLES = 1000  # raw per-round samples kept in the record, at most


def run_cell(
    benchmark, cell: Cell, context: RunContext, on_measured: Callable[[dict, list[float]], None] | None = None
) -> dict | None:
    """Measure `cell` into `benchmark.extra_info`; raises OracleMismatch after recording a wrong answer.
    `on_measured(record, samples_ms)` hears the record so far as soon as the cell is timed (a worker sends it
    to the harness, so a crash in the later checks loses nothing measured)."""
    matrix = context.matrix
    cfg = preset(cell.model)
    drawn = draw(cfg, cell.phase, cell.batch, cell.seq_len, seed=INPUT_SEED)
    ref = reference(cell.model, cell.phase, drawn)
    backend = get_backend(cell.backend)
    ok, reason = backend.availability(context)
    if not ok:
        raise BackendUnavailable(cell.backend, reason)
    limits = limits_for(cell.precision, cell.phase, matrix.tolerance)
    extra, record = {}, None
    embedding = resolve(cfg.embedding, matrix.sections.get("embedding"), cell.embedding)
    model = model_for(cell.model, cell.kernel).variant(embedding=embedding)
    with MemoryProbe(backend.device_for(context)) as probe:
        with backend.prepare(model, cell, context) as session:
            device = session.device
            before_dispatch = dict(DISPATCHED)
            run = session.runner(drawn)
            served = session.served_target()
            before = served.snapshot() if served is not None else None
            first = run()
            session.synchronize()
            ran = provenance(first, dispatched_since(before_dispatch), session.provenance())
            fetched = session.fetch(first)
            numerics = compare(ref, *fetched, limits)
            if getattr(benchmark, "disabled", False):
                numerics, _ = independent_checks(
                    session, cell, cfg, drawn, fetched, numerics, limits, draw, INPUT_SEED
                )
                return _verdict_only(cell, numerics, ran)
            info = None
            if cell.scenario:  # an MLPerf LoadGen scenario instead of per-call timing (bench/loadgen/)
                scenario = run_scenario(benchmark, session, cell, context, limits)
                timed, extra["scenario"] = scenario.timing, scenario.record
                if scenario.numerics is not None:
                    numerics = worst(numerics, scenario.numerics, "LoadGen accuracy mode over every sample")
                calls = [
                    "the first call",
                    "LoadGen's accuracy mode: every sample of the Query Sample Library",
                ]
                rate = (scenario.samples_per_s, scenario.mean_history)
            elif (
                session.varies_inputs
            ):  # its calls rotate through fresh batches: judge its own inputs after them
                timed = time_closure(
                    benchmark,
                    run,
                    session.timer,
                    session.synchronize,
                    matrix.timing,
                    before_timed=session.start_timed_rounds,
                )
                info = session.info()  # before any further call: its counters cover the timed rounds
                last = session.oracle_result(timed.last_result)
                numerics = worst(
                    numerics, compare(ref, *session.fetch(last), limits), "after the timed rounds"
                )
                calls = [
                    "the first call",
                    f"the cell's own inputs again after {timed.warmup_rounds} warm-up and "
                    f"{timed.rounds} timed calls on rotating batches of the workload",
                ]
                rate = None
            else:
                rounds = RoundChecks(session, ref, limits)
                timed = time_closure(
                    benchmark,
                    run,
                    session.timer,
                    session.synchronize,
                    matrix.timing,
                    rounds,
                    before_timed=session.start_timed_rounds,
                )
                numerics = rounds.fold(numerics)
                calls = [f"every call: the first, {timed.warmup_rounds} warm-up and {timed.rounds} timed"]
                rate = None
            try:
                info = info if info is not None else session.info()
                backend_info = {"name": cell.backend, **{k: v for k, v in info.items() if k != "embedding"}}
                if "embedding" in info:
                    extra["embedding"] = info["embedding"]
                record = _record(
                    cell,
                    matrix,
                    drawn,
                    timed,
                    probe.result(),
                    numerics,
                    calls,
                    ran,
                    environment(device),
                    backend_info,
                    rate,
                    **extra,
                )
                if on_measured is not None:
                    on_measured(record, list(timed.samples_ms))
                if served is not None:
                    extra["serving"] = serving_record(
                        served, cell, serving_spec(matrix), served.window(before, served.snapshot())
                    )
                numerics, looks = independent_checks(
                    session, cell, cfg, drawn, fetched, numerics, limits, draw, INPUT_SEED
                )
            except Exception as exc:
                _fail_after_timing(benchmark, record, f"{type(exc).__name__}: {exc}")
                raise
    record = _record(
        cell,
        matrix,
        drawn,
        timed,
        probe.result(),
        numerics,
        calls + looks,
        ran,
        environment(device),
        record["backend"],
        rate,
        **extra,
    )
    _judge_labels(cell, record, numerics, ran, matrix.tolerance)
    benchmark.extra_info.update(record)
    if not record["numerics"]["passed"]:
        raise OracleMismatch(
            f"{cell.id}: outputs disagree with the fp32 reference: {record['numerics']['message']}"
        )
    return record


def _record(
    cell: Cell,
    matrix,
    drawn: dict,
    timed: TimingResult,
    memory: dict,
    numerics: Numerics,
    checks: list[str],
    ran: dict,
    env: dict,
    backend: dict,
    rate: tuple[float, float] | None,
    **extra,
) -> dict:
    """The record; `rate` is (sequences/s, mean history) where a scenario measured its own (LoadGen's
    samples/s over its Query Sample Library's users) instead of one call of the cell's batch."""
    latency = latency_summary(timed.samples_ms)
    latency["p50_ci95"] = list(median_ci(timed.samples_ms))
    # The raw samples, so two runs can later be compared by a significance test and not only by medians.
    latency["samples"] = thin(timed.samples_ms, STORED_SAMPLES)
    latency["samples_stored"] = (
        "all"
        if len(latency["samples"]) == len(timed.samples_ms)
        else f"{len(latency['samples'])} of {len(timed.samples_ms)}, evenly spaced in time order"
    )
    per_second, mean_history = rate or (
        throughput(cell.batch, latency["p50"]),
        float(drawn["lengths"].float().mean()),
    )
    return build_record(
        cell=cell.as_dict() | {"matrix": matrix.name, "mean_history": mean_history},
        latency_ms=latency,
        throughput={"sequences_per_s": per_second, "history_items_per_s": per_second * mean_history},
        timer=timed.record(),
        memory=memory,
        numerics=numerics.as_dict() | {"checks": checks},
        provenance=ran,
        env=env,
        backend=backend,
        **extra,
    )


def _judge_labels(cell: Cell, record: dict, numerics: Numerics, ran: dict, overrides) -> None:
    """What the record says ran, and the limits it was judged by, against the cell's own labels."""
    problems = contradictions(cell, ran)
    mismatch = tolerance_mismatch(record, overrides)
    if mismatch:
        problems.append(mismatch)
    if problems:
        record["numerics"]["passed"] = False
        record["numerics"]["message"] = "; ".join(
            ([] if numerics.passed else [numerics.message]) + [f"false label: {p}" for p in problems]
        )


def _fail_after_timing(benchmark, record: dict | None, why: str) -> None:
    """The cell was timed, then failed: its record stays, complete and marked failed with the reason."""
    if record is None:
        return
    record["numerics"]["passed"] = False
    record["numerics"]["message"] = f"failed after timing: {why}"
    benchmark.extra_info.update(record)


def _verdict_only(cell: Cell, numerics: Numerics, ran: dict) -> None:
    """pytest-benchmark disabled: the oracle's verdict without timing or record."""
    problems = contradictions(cell, ran)
    if not numerics.passed or problems:
        message = "; ".join(
            ([] if numerics.passed else [numerics.message]) + [f"false label: {p}" for p in problems]
        )
        raise OracleMismatch(f"{cell.id}: outputs disagree with the fp32 reference: {message}")
    return None
