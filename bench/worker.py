"""A cell worker: a subprocess that runs cells of one backend exactly as the harness runs them in-process.

Started by bench/isolation.py. It reads one JSON job per line on stdin and answers on its message pipe (never
stdout, which backends and libraries print to): `ready` once imported, then per cell a `measured` event right
after the timing (the record so far and every sample, so a crash later loses nothing measured) and a `done`
event with the outcome. Timing happens here, inside run_cell, exactly as in-process: no IPC inside the timed
region. A hung cell dumps every thread's stack to stderr shortly before its timeout (faulthandler), so the
parent's failure message shows where it hung.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys

from genrec_bench.matrices.cells import Cell


class WorkerBenchmark:
    """The part of pytest-benchmark's fixture run_cell uses, with pedantic's semantics: `rounds` calls of the
    target, `teardown()` after each, outside the timed interval; the samples are the target's own (the parent
    hands them to the real fixture)."""

    def __init__(self, disabled: bool):
        self.disabled, self.extra_info = disabled, {}

    def pedantic(self, target, *, rounds=1, warmup_rounds=0, iterations=1, teardown=None, **_):
        result = None
        for _ in range(warmup_rounds):
            target()
        for _ in range(rounds):
            result = target()
            if teardown is not None:
                teardown()
        return result


def _send(pipe, message: dict) -> None:
    pipe.write(json.dumps(message) + "\n")
    pipe.flush()


def _register(backend: str, where: str) -> None:
    """Make the cell's backend known here as in the harness: the same class, imported from its module (a
    backend registered by a pytest plugin or an entry point is not registered in a fresh process)."""
    import importlib

    from genrec_bench.backends import backend_names, load_entry_points, register_backend

    load_entry_points()
    if backend not in backend_names():
        module, _, qualname = where.partition(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        register_backend(cls)


def _run(job: dict, pipe) -> dict:
    from genrec_bench.backends.base import RunContext
    from genrec_bench.bench.cell_runner import run_cell
    from genrec_bench.matrices import Known, load_matrix
    from genrec_bench.matrices.errors import BackendError, BackendUnavailable, OracleMismatch

    _register(job["cell"]["backend"], job["backend_class"])
    # The harness validated the matrix against what it knew (plugins' backends included): the same here.
    known = Known(
        backends={k: tuple(v) for k, v in job["known"]["backends"].items()},
        models=tuple(job["known"]["models"]),
        kernels=tuple(job["known"]["kernels"]),
    )
    matrix = load_matrix(job["matrix"], known)
    context = RunContext(
        matrix=matrix,
        peers=tuple(Cell(**c) for c in job["peers"]),
        triton_url=job["triton_url"],
        results_path=job.get("results_path"),
    )
    cell = Cell(**job["cell"])
    bench = WorkerBenchmark(job["benchmark_disabled"])

    def on_measured(record: dict, samples: list[float]) -> None:
        _send(pipe, {"event": "measured", "record": record, "samples_ms": samples})

    try:
        run_cell(bench, cell, context, on_measured=on_measured)
        return {"outcome": "passed", "record": bench.extra_info or None}
    except BackendUnavailable as err:
        return {"outcome": "skipped", "message": err.reason}
    except (BackendError, OracleMismatch) as err:
        return {"outcome": "failed", "message": str(err), "record": bench.extra_info or None}


def main() -> int:
    pipe = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    _send(pipe, {"event": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        job = json.loads(line)
        if job.get("quit"):
            break
        # Shortly before the parent's deadline: every thread's stack on stderr, for the failure message.
        faulthandler.dump_traceback_later(max(1.0, job["timeout_s"] - 2.0), exit=False)
        try:
            done = _run(job, pipe)
        except Exception as exc:  # noqa: BLE001 - a harness bug in the worker still answers, in one line
            done = {"outcome": "error", "message": f"{type(exc).__name__}: {exc}"}
        finally:
            faulthandler.cancel_dump_traceback_later()
        _send(pipe, {"event": "done", **done})
    return 0


if __name__ == "__main__":
    sys.exit(main())
