"""The backend contract: a Backend prepares a cell once into a Session; a Session hands out the zero-argument
closure that is the only thing timed.

Template methods keep the checks in one place: `prepare()` checks availability, mode and precision, then calls
`prepare_impl()`; failures come back as one-line errors prefixed by the backend's name.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from matrices.cells import PRECISIONS, Cell
from matrices.errors import BackendError, BackendUnavailable, HarnessError

TIMERS = ("cuda_event", "sync_clock", "host_clock")


class Session(abc.ABC):
    """A prepared cell. Use as a context manager so GPU memory, engines and servers are always released.

    timer says how the bench must time it:
    - `cuda_event`: work is on torch's current CUDA stream; CUDA events around the closure, then synchronise;
    - `sync_clock`: device work on some other stream (ONNX Runtime, a server): clock, run, synchronize, clock;
    - `host_clock`: the closure returns when its work is done (CPU backends, blocking clients).
    """

    timer: ClassVar[str] = "host_clock"
    device: str = "cpu"

    @abc.abstractmethod
    def runner(self, drawn: dict[str, torch.Tensor]) -> Callable[[], Any]:
        """Move `drawn` inputs where they need to be and return the closure to time (setup stays out of it)."""

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

    def start_timed_rounds(self) -> None:
        """Called after the warm-up rounds, right before the timed ones (outside timing): a session that
        counts what its calls do (an embedding cache) resets its counters here."""

    def oracle_result(self, last_result: Any) -> Any:
        """What the oracle rechecks after the timed rounds: by default the last timed round's result. A session
        whose rounds run other inputs than the cell's own runs the cell's own inputs once more here."""
        return last_result

    def extra_records(self, matrix) -> dict:
        """Further measurements after the per-call timing, as record sections (e.g. `{"serving": {...}}` for a
        concurrency sweep); called once, outside the timed region. `matrix` gives access to its sections."""
        return {}

    def close(self) -> None:
        """Release what prepare took."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Backend(abc.ABC):
    """A way of running the model. Subclasses set `name` and implement `prepare_impl`.

    availability() answers (ok, reason) without raising, so the plugin can turn a missing library or device into
    a skip with its reason; heavy optional libraries are imported inside it and inside prepare_impl only.
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
        return (f"placement={placement} is not supported: {self.name} holds the whole item table on its device "
                f"(placements: {', '.join(self.placements)}); the torch backends run it")

    def availability(self) -> tuple[bool, str]:
        return True, ""

    def prepare(self, model: torch.nn.Module, cell: Cell, peers: tuple[Cell, ...] = ()) -> Session:
        """Prepare `model` (the fp32 CPU reference weights) for `cell`; raises BackendUnavailable/BackendError.

        `peers` are the other runnable cells of the matrix: a backend that builds shape-specialised engines
        (TensorRT profiles) sizes them to the range its peers need, so one engine serves a whole batch sweep.
        """
        self.peers = tuple(peers) or (cell,)
        ok, reason = self.availability()
        if not ok:
            raise BackendUnavailable(self.name, reason)
        if cell.backend != self.name:
            raise BackendError(f"{self.name} | was asked to prepare a {cell.backend} cell ({cell.id})")
        if cell.mode not in self.modes:
            raise BackendError(f"{self.name} | mode {cell.mode!r} is not supported; modes: {', '.join(self.modes)}")
        if cell.precision not in self.precisions:
            raise BackendError(f"{self.name} | precision {cell.precision!r} is not supported; "
                               f"precisions: {', '.join(self.precisions)}")
        problem = self.placement_problem(getattr(getattr(model, "embedding", None), "placement", "device"))
        if problem:
            raise BackendUnavailable(self.name, problem)
        try:
            session = self.prepare_impl(model, cell)
        except HarnessError:
            raise
        except Exception as exc:  # a library's own error: keep its words, say whose it is
            raise BackendError(f"{self.name} | preparing {cell.id} failed: {type(exc).__name__}: {exc}") from exc
        if session.timer not in TIMERS:
            raise BackendError(f"{self.name} | session timer {session.timer!r} is not one of {TIMERS}")
        return session

    @abc.abstractmethod
    def prepare_impl(self, model: torch.nn.Module, cell: Cell) -> Session:
        """Build the session (compile, export, build an engine, start a server)."""
