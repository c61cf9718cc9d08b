"""Serving scenarios of served cells (the Triton backends' modes), run by the bench after the per-call timing.

The backend serves the model and describes the target (`Session.served_target()`); what load is put on it, and
the statistics of what the clients saw, are the bench's.
"""

from __future__ import annotations

from genrec_bench.backends.base import ServedTarget
from genrec_bench.bench.serving.scenarios import concurrency_sweep, poisson_load
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.serving import ServingSpec


def serving_record(target: ServedTarget, cell: Cell, spec: ServingSpec, per_request: dict) -> dict:
    """The record's `serving` section: the per-request window of the timed rounds (`per_request`, the target's
    server-side split over them), then the cell mode's scenario."""
    record = {
        "scenario": cell.mode,
        "protocol": target.protocol,
        "target": spec.target,
        "entry_model": target.model,
        "users_per_request": cell.batch,
        "per_request": per_request,
    }
    if cell.mode in ("sweep", "crosscheck"):
        record["sweep"] = concurrency_sweep(target, spec.sweep)
    if cell.mode == "poisson":
        record["poisson"] = poisson_load(target, spec.poisson)
    if cell.mode == "crosscheck":
        record["perf_analyzer"] = (
            target.cross_check(list(spec.sweep.concurrency), spec.perf_analyzer)
            if target.cross_check
            else {"available": False, "reason": f"{target.name} has no cross-check tool"}
        )
    return record
