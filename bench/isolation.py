"""Cell isolation: each backend's cells run in a worker subprocess (bench/worker.py), reused across that
backend's cells, so a crash, a hang or an `os._exit` stays in its cell.

A worker that dies, exits or passes the cell's deadline (`timing.timeout_s`) is killed; the cell fails with
the reason and the tail of the worker's stderr (for a hang, the stacks faulthandler dumped just before), keeps
its record if it was already timed, and the next cell gets a fresh worker. The timed region is inside the
worker, untouched: the parent only hands the worker's own samples to pytest-benchmark (see bench/timing.py).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from genrec_bench.backends.base import RunContext
from genrec_bench.backends.processes import die_with_parent
from genrec_bench.matrices.cells import Cell

STDERR_TAIL_LINES = 15
START_TIMEOUT_S = 120.0
QUIT_TIMEOUT_S = 30.0
# The worker imports the checkout as the `genrec_bench` package, whether or not it is installed, exactly as
# the harness's conftest.py does; then runs bench/worker.py's main with its message pipe's fd.
BOOTSTRAP = (
    "import sys, types; p = types.ModuleType('genrec_bench'); p.__path__ = [{root!r}]; "
    "sys.modules['genrec_bench'] = p; from genrec_bench.bench.worker import main; sys.exit(main())"
)


@dataclass
class WorkerOutcome:
    outcome: str  # passed, failed, skipped, error, crashed, timeout
    message: str = ""
    record: dict | None = None  # the final record, or the one sent right after timing
    samples_ms: list[float] = field(default_factory=list)


class Worker:
    """One worker process and its pipes; its stderr goes to a file read only for failure messages."""

    def __init__(self, backend: str):
        root = str(Path(__file__).resolve().parents[1])
        self.backend = backend
        self.stderr = tempfile.NamedTemporaryFile(
            prefix=f"genrec-worker-{backend}-", suffix=".log", delete=False
        )
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP.format(root=root), str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=self.stderr,
            stderr=self.stderr,
            pass_fds=(write_fd,),
            text=True,
            preexec_fn=die_with_parent,
        )  # noqa: PLW1509 - see backends/processes.py
        os.close(write_fd)
        self.messages = os.fdopen(read_fd, "r", encoding="utf-8")
        ready = self.read(time.monotonic() + START_TIMEOUT_S)
        if ready is None or ready.get("event") != "ready":
            raise RuntimeError(f"the {backend} worker did not start: {self.why_gone()}")

    def read(self, deadline: float) -> dict | None:
        """The next message, or None when the worker is gone (its pipe at end of file) or the deadline
        passed."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.messages, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if selector.select(timeout=min(left, 0.5)):
                    line = self.messages.readline()
                    return json.loads(line) if line else None
        return None

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def why_gone(self) -> str:
        code = self.proc.poll()
        if code is None:
            state = "still running"
        elif code < 0:
            state = f"killed by {signal.Signals(-code).name}"
        else:
            state = f"exited with code {code}"
        return f"{state}; its stderr ends:\n{self.stderr_tail()}"

    def stderr_tail(self) -> str:
        self.stderr.flush()
        text = Path(self.stderr.name).read_text(errors="replace").rstrip()
        return "\n".join(text.splitlines()[-STDERR_TAIL_LINES:]) or "(nothing)"

    def stop(self, *, kill: bool = False) -> None:
        """Ask the worker to finish (it stops its servers on the way out), or kill it now."""
        if self.proc.poll() is None:
            try:
                if kill:
                    raise TimeoutError
                self.send({"quit": True})
                self.proc.wait(timeout=QUIT_TIMEOUT_S)
            except (TimeoutError, subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.proc.kill()
                self.proc.wait()
        for handle in (self.messages, self.proc.stdin, self.stderr):
            try:
                handle.close()
            except OSError:
                pass
        Path(self.stderr.name).unlink(missing_ok=True)


class WorkerPool:
    """One worker per backend, started on its first cell and replaced after a failure it did not survive."""

    def __init__(self, matrix_path: str):
        self.matrix_path = matrix_path
        self.workers: dict[str, Worker] = {}

    def run(self, cell: Cell, context: RunContext, *, benchmark_disabled: bool) -> WorkerOutcome:
        timeout = context.matrix.timing.timeout_s
        worker = self.workers.get(cell.backend)
        if worker is None or worker.proc.poll() is not None:
            worker = self.workers[cell.backend] = Worker(cell.backend)
        worker.send(
            {
                "cell": _fields(cell),
                "matrix": self.matrix_path,
                "known": _known(),
                "backend_class": _class_path(cell.backend),
                "peers": [_fields(c) for c in context.peers],
                "triton_url": context.triton_url,
                "results_path": context.results_path,
                "benchmark_disabled": benchmark_disabled,
                "timeout_s": timeout,
            }
        )
        deadline = time.monotonic() + timeout
        measured = WorkerOutcome("crashed")
        try:
            while True:
                message = worker.read(deadline)
                if message is None:
                    return self._lost(cell, worker, measured, timeout, deadline)
                if message["event"] == "measured":
                    measured.record, measured.samples_ms = message["record"], message["samples_ms"]
                elif message["event"] == "done":
                    record = message.get("record") or measured.record
                    return WorkerOutcome(
                        message["outcome"], message.get("message", ""), record, measured.samples_ms
                    )
        except BaseException:  # an interrupt (Ctrl-C, SIGTERM) while a cell runs: the worker goes with it
            self._retire(cell.backend, kill=True)
            raise

    def _lost(
        self, cell: Cell, worker: Worker, measured: WorkerOutcome, timeout: float, deadline: float
    ) -> WorkerOutcome:
        hung = worker.proc.poll() is None and time.monotonic() >= deadline
        if hung:
            time.sleep(0.5)  # let faulthandler's stacks reach the log
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait()
        why = (
            f"did not finish within timing.timeout_s={timeout:g} s; its worker was killed"
            if hung
            else f"its worker {worker.why_gone().split(';')[0]}"
        )
        message = f"{cell.id}: {why}; the worker's stderr ends:\n{worker.stderr_tail()}"
        self._retire(cell.backend, kill=True)
        if measured.record is not None:  # timed before it was lost: the numbers stay, marked failed
            measured.record["numerics"]["passed"] = False
            measured.record["numerics"]["message"] = f"failed after timing: {why}"
        return WorkerOutcome("timeout" if hung else "crashed", message, measured.record, measured.samples_ms)

    def _retire(self, backend: str, *, kill: bool) -> None:
        worker = self.workers.pop(backend, None)
        if worker is not None:
            worker.stop(kill=kill)

    def close(self) -> None:
        for backend in list(self.workers):
            self._retire(backend, kill=False)


def _fields(cell: Cell) -> dict:
    return {k: v for k, v in cell.as_dict().items() if k != "id"}


def _known() -> dict:
    from genrec_bench.bench.plan import known

    what = known()
    return {
        "backends": {k: list(v) for k, v in what.backends.items()},
        "models": list(what.models),
        "kernels": list(what.kernels),
    }


def _class_path(backend: str) -> str:
    from genrec_bench.backends import get_backend

    cls = type(get_backend(backend))
    return f"{cls.__module__}:{cls.__qualname__}"


def run_cell_in_worker(benchmark, cell: Cell, context: RunContext, pool: WorkerPool) -> None:
    """run_cell's contract, run in the backend's worker: the worker's samples become pytest-benchmark's stats,
    its record the benchmark's extra_info, its outcome the same exceptions run_cell raises."""
    from genrec_bench.bench.timing import SAMPLE_CLOCK
    from genrec_bench.matrices.errors import BackendError, BackendUnavailable, OracleMismatch

    done = pool.run(cell, context, benchmark_disabled=bool(getattr(benchmark, "disabled", False)))
    if done.samples_ms and not getattr(benchmark, "disabled", False):
        samples = iter(done.samples_ms)
        benchmark.pedantic(
            lambda: SAMPLE_CLOCK.advance(next(samples)),
            rounds=len(done.samples_ms),
            warmup_rounds=0,
            iterations=1,
        )
    if done.record:
        benchmark.extra_info.update(done.record)
    if done.outcome == "skipped":
        raise BackendUnavailable(cell.backend, done.message)
    if done.outcome == "failed" and done.message.startswith(f"{cell.id}: outputs disagree"):
        raise OracleMismatch(done.message)
    if done.outcome != "passed":
        raise BackendError(done.message)
