"""One cell from start to record: draw inputs → prepare → run once → oracle → time → memory → extra_info.

The oracle judges the first call, every timed round (outside the timed interval), a second input set and the
checks that need no second implementation (bench/checks.py); what really ran is checked against the cell's label
(bench/provenance.py). A verdict is raised only after the timing and the record are written, so a wrong cell
still leaves its numbers in the JSON (marked `numerics.passed: false`).
"""
from __future__ import annotations

from genrec_bench.backends import get_backend
from genrec_bench.backends.base import RunContext
from genrec_bench.bench.checks import RoundChecks, independent_checks
from genrec_bench.bench.env import environment
from genrec_bench.bench.memory import MemoryProbe
from genrec_bench.bench.oracle import compare
from genrec_bench.bench.provenance import contradictions, provenance
from genrec_bench.bench.record import build_record
from genrec_bench.bench.reference_model import model_for, reference
from genrec_bench.bench.serving import serving_record
from genrec_bench.bench.stats import latency_summary, median_ci, thin, throughput
from genrec_bench.bench.timing import time_closure
from genrec_bench.bench.tolerances import limits_for, tolerance_mismatch
from genrec_bench.kernels import DISPATCHED, dispatched_since
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
    ref = reference(cell.model, cell.phase, drawn)
    backend = get_backend(cell.backend)
    ok, reason = backend.availability(context)
    if not ok:
        raise BackendUnavailable(cell.backend, reason)
    limits = limits_for(cell.precision, cell.phase, matrix.tolerance)
    extra = {}
    with MemoryProbe(backend.device_for(context)) as probe:
        with backend.prepare(model_for(cell.model, cell.kernel), cell, context) as session:
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
            rounds = RoundChecks(session, ref, limits)
            timed = time_closure(benchmark, run, session.timer, session.synchronize, matrix.timing, rounds)
            numerics = rounds.fold(numerics)
            backend_info = session.info()
            if served is not None:
                extra["serving"] = serving_record(served, cell, serving_spec(matrix),
                                                  served.window(before, served.snapshot()))
            numerics, looks = independent_checks(session, cell, cfg, drawn, fetched, numerics, limits, draw,
                                                 INPUT_SEED)
    checks = [f"every call: the first, {timed.warmup_rounds} warm-up and {timed.rounds} timed", *looks]
    latency = latency_summary(timed.samples_ms)
    latency["p50_ci95"] = list(median_ci(timed.samples_ms))
    # The raw samples, so two runs can later be compared by a significance test and not only by medians.
    latency["samples"] = thin(timed.samples_ms, STORED_SAMPLES)
    latency["samples_stored"] = ("all" if len(latency["samples"]) == len(timed.samples_ms) else
                                 f"{len(latency['samples'])} of {len(timed.samples_ms)}, evenly spaced in time order")
    mean_history = float(drawn["lengths"].float().mean())
    record = build_record(
        cell=cell.as_dict() | {"matrix": matrix.name, "mean_history": mean_history},
        latency_ms=latency,
        throughput={"sequences_per_s": throughput(cell.batch, latency["p50"]),
                    "history_items_per_s": throughput(int(drawn["lengths"].sum()), latency["p50"])},
        timer=timed.record(),
        memory=probe.result(),
        numerics=numerics.as_dict() | {"checks": checks},
        provenance=ran,
        env=environment(device),
        backend={"name": cell.backend, **backend_info},
        **extra,
    )
    # What the record says ran, and the limits it was judged by, against the cell's own labels.
    problems = contradictions(cell, ran)
    mismatch = tolerance_mismatch(record, matrix.tolerance)
    if mismatch:
        problems.append(mismatch)
    if problems:
        record["numerics"]["passed"] = False
        record["numerics"]["message"] = "; ".join(
            ([] if numerics.passed else [numerics.message]) + [f"false label: {p}" for p in problems])
    benchmark.extra_info.update(record)
    if not record["numerics"]["passed"]:
        raise OracleMismatch(f"{cell.id}: outputs disagree with the fp32 reference: "
                             f"{record['numerics']['message']}")
    return record
