"""The backend contract: a Backend prepares a cell once into a Session; a Session hands out the zero-argument
closure that is the only thing timed.

Template methods keep the checks in one place: `prepare()` checks availability, mode and precision, then calls
`prepare_impl()`; failures come back as one-line errors prefixed by the backend's name. What a backend may
know beyond its cell (the matrix and its sections, the other runnable cells, run options) reaches it as the
`RunContext` argument of `availability`, `device_for` and `prepare` — never through globals or the
environment.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from genrec_bench.matrices.cells import PRECISIONS, Cell
from genrec_bench.matrices.errors import BackendError, BackendUnavailable, HarnessError
from genrec_bench.matrices.loader import Matrix

TIMERS = ("cuda_event", "sync_clock", "host_clock")


@dataclass(frozen=True)
class RunContext:
    """What a run tells its backends: the matrix (timing, tolerances, sections such as `serving:`), the
    runnable cells of the run (`peers`: a backend that builds shape-specialised engines sizes them to their
    range), and options of the run (`triton_url`: a running Triton server to use instead of starting one;
    `results_path`: the run's --benchmark-json, beside which cells keep raw files such as LoadGen's logs)."""

    matrix: Matrix | None = None
    peers: tuple[Cell, ...] = ()
    triton_url: str | None = None
    results_path: str | None = None

    def section(self, name: str, default: Any = None) -> Any:
        """A parsed top-level section of the matrix (e.g. `serving`), or `default` when it has none."""
        if self.matrix is None:
            return default
        return self.matrix.sections.get(name, default)


@dataclass(frozen=True)
class ServedTarget:
    """A session served over the network, as load generators see it: where to send which request, and the
    server's own account of a measurement window (`snapshot()` before and after, `window(before, after)` →
    the server-side split and achieved batch)."""

    name: str  # backend name, for messages
    protocol: str  # "grpc" or "http"
    url: str
    model: str  # the entry model requests go to
    outputs: tuple[str, str]  # (scores, items) output names
    inputs_path: str  # .npz of the request's input arrays
    batch: int  # users per request
    load_generator: str  # a script: JSON job on stdin → JSON result on stdout (see bench/serving)
    snapshot: Callable[[], dict]
    window: Callable[[dict, dict], dict]
    alive: Callable[[], bool]
    log_tail: Callable[[int], str]
    cross_check: Callable[[list[int], Any], dict] | None = None  # perf_analyzer at the same levels, if any
    # The request's input arrays for any drawn users (scenario cells send varying users), if it can build
    # them.
    request_arrays: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class BucketRunner:
    """A runner of one fixed input shape whose inputs can be replaced: `load(drawn)` puts new users of the
    same shape in place (outside any timing), `run()` runs whatever was loaded last. Scenario cells
    (bench/loadgen/) run LoadGen's varying batches through one of these per batch-size bucket."""

    load: Callable[[dict[str, torch.Tensor]], None]
    run: Callable[[], Any]


class Session(abc.ABC):
    """A prepared cell. Use as a context manager so GPU memory, engines and servers are always released.

    timer says how the bench must time it:
    - `cuda_event`: work is on torch's current CUDA stream; CUDA events around the closure, then synchronise;
    - `sync_clock`: device work on some other stream (ONNX Runtime, a server): clock, run, synchronize, clock;
    - `host_clock`: the closure returns when its work is done (CPU backends, blocking clients).
    """

    timer: ClassVar[str] = "host_clock"
    device: str = "cpu"
    # Inputs carry explicit lengths, so what sits past a user's length is padding the answer must ignore (the
    # oracle fills it with random items to check); False where requests mark padding by id 0 instead.
    pads_with_lengths: bool = True

    @abc.abstractmethod
    def runner(self, drawn: dict[str, torch.Tensor]) -> Callable[[], Any]:
        """Move `drawn` inputs where they need to be and return the closure to time (setup stays out of
        it)."""

    def bucket_runner(self, drawn: dict[str, torch.Tensor]) -> BucketRunner:
        """A BucketRunner first loaded with `drawn`. This default builds a fresh `runner()` on every load,
        which suits sessions whose runner is cheap to build; shape-specialised sessions (CUDA graphs) override
        it to copy new inputs into the buffers their closure reads."""
        current = [self.runner(drawn)]

        def load(new):
            current[0] = self.runner(new)

        return BucketRunner(load=load, run=lambda: current[0]())

    def fetch(self, result: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The closure's result as CPU (scores, items) tensors for the oracle; never called inside timing."""
        scores, items = result
        return torch.as_tensor(scores).detach().float().cpu(), torch.as_tensor(items).detach().long().cpu()

    def synchronize(self) -> None:
        """Wait for all device work this session issued (no-op on CPU)."""

    def info(self) -> dict:
        """What the record should say about how this session runs (providers, options, precision policy); an
        `embedding` key becomes the record's own `embedding` section. Called once, right after the timed
        rounds and before any further call of the closure."""
        return {}

    # Whether the closure's calls after the first run other inputs than the runner's own (a cell measuring an
    # embedding placement rotates through fresh batches): the oracle then judges `oracle_result`, not each
    # call.
    varies_inputs: bool = False

    def start_timed_rounds(self) -> None:
        """Called after the warm-up rounds, right before the timed ones (outside timing): a session that
        counts what its calls do (an embedding cache) resets its counters here."""

    def oracle_result(self, last_result: Any) -> Any:
        """The answer to the runner's own inputs after its calls: by default the last call's result. A session
        that varies its inputs runs the runner's own inputs once more here."""
        return last_result

    def provenance(self) -> dict:
        """What the backend itself can say about what ran, for the record's `provenance` (e.g. an ONNX graph's
        declared I/O types as `graph_io`, or a served model's own output dtype and kernels). The bench adds
        the closure's raw output dtype and the kernels dispatched in-process."""
        return {}

    def served_target(self) -> ServedTarget | None:
        """For a session behind a server: what load generators need (the bench runs the serving scenarios)."""
        return None

    def close(self) -> None:
        """Release what prepare took."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Backend(abc.ABC):
    """A way of running the model. Subclasses set `name` and implement `prepare_impl`.

    availability(context) answers (ok, reason) without raising, so the plugin can turn a missing library or
    device into a skip with its reason; heavy optional libraries are imported inside it and inside
    prepare_impl only.
    """

    name: ClassVar[str]
    modes: ClassVar[tuple[str, ...]] = ("eager",)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    # Where its work runs: the memory probe watches this device (NVML, allocator) for the whole cell.
    device: ClassVar[str] = "cpu"
    # Where it can keep the item table (models/embedding): exported graphs and servers hold it on the device.
    placements: ClassVar[tuple[str, ...]] = ("device",)

    def placement_problem(self, placement: str) -> str | None:
        """Why this backend cannot run an item table placed `placement` (None when it can)."""
        if placement in self.placements:
            return None
        return (
            f"placement={placement} is not supported: {self.name} holds the whole item table on its device "
            f"(placements: {', '.join(self.placements)}); the torch backends run it"
        )

    def availability(self, context: RunContext | None = None) -> tuple[bool, str]:
        """(True, "") when this machine can run the backend, else (False, why not)."""
        return True, ""

    def device_for(self, context: RunContext | None = None) -> str:
        """The device its cells run on under `context` (a served backend's may depend on the matrix)."""
        return self.device

    def prepare(self, model: torch.nn.Module, cell: Cell, context: RunContext | None = None) -> Session:
        """Prepare `model` (the fp32 CPU reference weights) for `cell`; raises
        BackendUnavailable/BackendError."""
        context = context or RunContext(peers=(cell,))
        ok, reason = self.availability(context)
        if not ok:
            raise BackendUnavailable(self.name, reason)
        if cell.backend != self.name:
            raise BackendError(f"{self.name} | was asked to prepare a {cell.backend} cell ({cell.id})")
        if cell.mode not in self.modes:
            raise BackendError(
                f"{self.name} | mode {cell.mode!r} is not supported; modes: {', '.join(self.modes)}"
            )
        if cell.precision not in self.precisions:
            raise BackendError(
                f"{self.name} | precision {cell.precision!r} is not supported; "
                f"precisions: {', '.join(self.precisions)}"
            )
        problem = self.placement_problem(getattr(getattr(model, "embedding", None), "placement", "device"))
        if problem:
            raise BackendUnavailable(self.name, problem)
        try:
            session = self.prepare_impl(model, cell, context)
        except HarnessError:
            raise
        except Exception as exc:  # a library's own error: keep its words, say whose it is
            raise BackendError(
                f"{self.name} | preparing {cell.id} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if session.timer not in TIMERS:
            raise BackendError(f"{self.name} | session timer {session.timer!r} is not one of {TIMERS}")
        return session

    @abc.abstractmethod
    def prepare_impl(self, model: torch.nn.Module, cell: Cell, context: RunContext) -> Session:
        """Build the session (compile, export, build an engine, start a server)."""
