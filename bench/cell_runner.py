"""One cell from start to record: draw inputs → prepare → run once → oracle → time → memory → extra_info.

The oracle's verdict is raised only after the timing and the record are written, so a wrong cell still leaves
its numbers in the JSON (marked `numerics.passed: false`). The cell's embedding placement (its preset's, the
matrix section's knobs, its label's placement and budget) travels with the model it hands the backend.
"""
from __future__ import annotations

from backends import get_backend
from bench.env import environment
from bench.memory import MemoryProbe
from bench.oracle import compare, recheck, tolerance_for
from bench.record import build_record
from bench.reference import model_for, reference_topk
from bench.stats import bootstrap_ci, summarize, throughput
from bench.timing import time_closure
from matrices.cells import Cell
from matrices.embedding import resolve
from matrices.errors import BackendUnavailable, OracleMismatch
from matrices.loader import Matrix
from models import draw, preset

INPUT_SEED = 1234


def run_cell(benchmark, cell: Cell, matrix: Matrix, peers: tuple[Cell, ...] = ()) -> dict:
    """Measure `cell` into `benchmark.extra_info`; raises OracleMismatch after recording a wrong answer."""
    cfg = preset(cell.model)
    drawn = draw(cfg, cell.phase, cell.batch, cell.seq_len, seed=INPUT_SEED)
    ref_scores, ref_items = reference_topk(cell.model, cell.phase, drawn)
    backend = get_backend(cell.backend)
    ok, reason = backend.availability()
    if not ok:
        raise BackendUnavailable(cell.backend, reason)
    device = "cpu"
    embedding = resolve(cfg.embedding, matrix.sections.get("embedding"), cell.embedding)
    model = model_for(cell.model, cell.kernel).variant(embedding=embedding)
    with MemoryProbe(backend.device) as probe:
        with backend.prepare(model, cell, peers) as session:
            device = session.device
            run = session.runner(drawn)
            first = run()
            session.synchronize()
            scores, items = session.fetch(first)
            numerics = compare(ref_scores, ref_items, scores, items, tolerance_for(cell.precision, matrix.tolerance))
            timed = time_closure(benchmark, run, session.timer, session.synchronize, matrix.timing,
                                 before_timed=session.start_timed_rounds)
            backend_info = session.info()  # before any further call: its counters cover the timed rounds
            # The oracle again after the timed rounds: a closure that reuses buffers (CUDA graphs, IO binding)
            # or keeps state (a cache) must still be right after many calls, not only the first.
            last = session.oracle_result(timed.last_result)
            numerics = recheck(numerics, compare(ref_scores, ref_items, *session.fetch(last),
                                                 tolerance_for(cell.precision, matrix.tolerance)))
            extra = session.extra_records(matrix)
    latency = summarize(timed.samples_ms)
    latency["p50_ci95"] = list(bootstrap_ci(timed.samples_ms))
    mean_history = float(drawn["lengths"].float().mean())
    record = build_record(
        cell=cell.as_dict() | {"matrix": matrix.name, "mean_history": mean_history},
        latency_ms=latency,
        throughput={"sequences_per_s": throughput(cell.batch, latency["p50"]),
                    "history_items_per_s": throughput(int(drawn["lengths"].sum()), latency["p50"])},
        timer=timed.record(),
        memory=probe.result(),
        numerics=numerics.as_dict(),
        env=environment(device),
        backend={"name": cell.backend, **{k: v for k, v in backend_info.items() if k != "embedding"}},
        **({"embedding": backend_info["embedding"]} if "embedding" in backend_info else {}),
        **extra,
    )
    benchmark.extra_info.update(record)
    if not numerics.passed:
        raise OracleMismatch(f"{cell.id}: outputs disagree with the fp32 reference: {numerics.message}")
    return record

