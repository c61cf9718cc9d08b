"""One cell from start to record: draw inputs → prepare → run once → oracle → time → memory → extra_info.

The oracle's verdict is raised only after the timing and the record are written, so a wrong cell still leaves
its numbers in the JSON (marked `numerics.passed: false`).
"""
from __future__ import annotations

from genrec_bench.backends import get_backend
from genrec_bench.backends.base import RunContext
from genrec_bench.bench.env import environment
from genrec_bench.bench.loadgen import run_scenario
from genrec_bench.bench.memory import MemoryProbe
from genrec_bench.bench.oracle import compare, recheck, tolerance_for
from genrec_bench.bench.record import build_record
from genrec_bench.bench.reference_model import model_for, reference_topk
from genrec_bench.bench.serving import serving_record
from genrec_bench.bench.stats import latency_summary, median_ci, thin, throughput
from genrec_bench.bench.timing import time_closure
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendUnavailable, OracleMismatch
from genrec_bench.matrices.serving import serving_spec
from genrec_bench.models import draw, preset

INPUT_SEED = 1234
STORED_SAMPLES = 1000  # raw per-round samples kept in the record, at most


def run_cell(benchmark, cell: Cell, context: RunContext) -> dict:
    """Measure `cell` into `benchmark.extra_info`; raises OracleMismatch after recording a wrong answer."""
    matrix = context.matrix
    cfg = preset(cell.model)
    drawn = draw(cfg, cell.phase, cell.batch, cell.seq_len, seed=INPUT_SEED)
    ref_scores, ref_items = reference_topk(cell.model, cell.phase, drawn)
    backend = get_backend(cell.backend)
    ok, reason = backend.availability(context)
    if not ok:
        raise BackendUnavailable(cell.backend, reason)
    tolerance = tolerance_for(cell.precision, matrix.tolerance)
    extra = {}
    with MemoryProbe(backend.device_for(context)) as probe:
        with backend.prepare(model_for(cell.model, cell.kernel), cell, context) as session:
            device = session.device
            run = session.runner(drawn)
            served = session.served_target()
            before = served.snapshot() if served is not None else None
            first = run()
            session.synchronize()
            numerics = compare(ref_scores, ref_items, *session.fetch(first), tolerance)
            if cell.scenario:  # an MLPerf LoadGen scenario instead of per-call timing (bench/loadgen/)
                scenario = run_scenario(benchmark, session, cell, context, tolerance)
                timed, extra["scenario"] = scenario.timing, scenario.record
                if scenario.numerics is not None:
                    numerics = recheck(numerics, scenario.numerics, "LoadGen accuracy mode over every sample")
            else:
                timed = time_closure(benchmark, run, session.timer, session.synchronize, matrix.timing)
                # The oracle again on the last timed round: a closure that reuses buffers (CUDA graphs, IO
                # binding) must still be right after many calls, not only the first.
                numerics = recheck(numerics, compare(ref_scores, ref_items, *session.fetch(timed.last_result),
                                                     tolerance))
            backend_info = session.info()
            if served is not None:
                extra["serving"] = serving_record(served, cell, serving_spec(matrix),
                                                  served.window(before, served.snapshot()))
    latency = latency_summary(timed.samples_ms)
    latency["p50_ci95"] = list(median_ci(timed.samples_ms))
    # The raw samples, so two runs can later be compared by a significance test and not only by medians.
    latency["samples"] = thin(timed.samples_ms, STORED_SAMPLES)
    latency["samples_stored"] = ("all" if len(latency["samples"]) == len(timed.samples_ms) else
                                 f"{len(latency['samples'])} of {len(timed.samples_ms)}, evenly spaced in time order")
    if cell.scenario:  # LoadGen's samples/s over the Query Sample Library's users
        mean_history, per_second = scenario.mean_history, scenario.samples_per_s
    else:
        mean_history, per_second = float(drawn["lengths"].float().mean()), throughput(cell.batch, latency["p50"])
    record = build_record(
        cell=cell.as_dict() | {"matrix": matrix.name, "mean_history": mean_history},
        latency_ms=latency,
        throughput={"sequences_per_s": per_second, "history_items_per_s": per_second * mean_history},
        timer=timed.record(),
        memory=probe.result(),
        numerics=numerics.as_dict(),
        env=environment(device),
        backend={"name": cell.backend, **backend_info},
        **extra,
    )
    benchmark.extra_info.update(record)
    if not numerics.passed:
        raise OracleMismatch(f"{cell.id}: outputs disagree with the fp32 reference: {numerics.message}")
    return record
