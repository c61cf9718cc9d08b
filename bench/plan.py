"""The cells step: a matrix file → one planned test per cell, each runnable or skipped with its reason.

A cell is skipped when the matrix excludes it, when its backend cannot run on this machine (the backend's own
availability answer — or the error its availability check raised), when its kernel cannot run on the backend's
device, or when its seq_len passes the preset's window. The runnable cells are the run's peers: they reach
each backend in the RunContext, so an engine can be sized for all of them. Nothing here runs a cell.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch

from genrec_bench.backends import backend_modes, backend_names, get_backend, load_entry_points
from genrec_bench.backends.base import RunContext
from genrec_bench.bench.loadgen import scenario_skip
from genrec_bench.kernels import KERNELS, kernel_availability
from genrec_bench.matrices import Cell, HarnessError, Known, Matrix, load_matrix
from genrec_bench.models import presets
from genrec_bench.models.config import PresetError

DEFAULT_MATRIX = "matrices/smoke.yaml"


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    skip: str | None  # why it does not run here; None when it runs


@dataclass(frozen=True)
class Plan:
    matrix: Matrix
    cells: tuple[PlannedCell, ...]
    context: RunContext

    @property
    def runnable(self) -> tuple[Cell, ...]:
        return self.context.peers

    def cell(self, cell_id: str) -> Cell:
        """The planned cell with this id."""
        return next(p.cell for p in self.cells if p.cell.id == cell_id)


def known() -> Known:
    """What a matrix is validated against: registered backends (entry points loaded), presets, kernels."""
    load_entry_points()
    try:
        return Known(backends=backend_modes(), models=tuple(presets()), kernels=KERNELS)
    except PresetError as err:
        raise HarnessError(str(err)) from None


def backend_filter(patterns: str | None):
    """`--matrix-backends 'torch-*,ort-cpu'` → a predicate over backend names; a pattern that matches no
    registered backend is a mistake (a typo would otherwise run nothing and pass)."""
    wanted = [p.strip() for p in (patterns or "").split(",") if p.strip()]
    names = backend_names()
    for pattern in wanted:
        if not fnmatch.filter(names, pattern):
            raise HarnessError(
                f"--matrix-backends: {pattern!r} matches no registered backend; registered: "
                f"{', '.join(names)}"
            )
    return lambda name: not wanted or any(fnmatch.fnmatchcase(name, p) for p in wanted)


def plan(
    path: str, *, backends: str | None = None, triton_url: str | None = None, results_path: str | None = None
) -> Plan:
    """Load and validate the matrix at `path` and plan its cells; raises HarnessError (one line) on a mistake.
    `results_path` (the run's --benchmark-json) tells cells where raw files they keep go."""
    what = known()
    matrix = load_matrix(path, what)
    keep = backend_filter(backends)
    probe = RunContext(matrix=matrix, triton_url=triton_url)
    availability: dict[str, tuple[bool, str, str]] = {}
    planned: list[PlannedCell] = []
    for cell, excluded in matrix.cells(what):
        if not keep(cell.backend):
            continue
        if cell.backend not in availability:
            availability[cell.backend] = _availability(cell.backend, probe)
        planned.append(PlannedCell(cell, excluded or _skip_reason(cell, *availability[cell.backend])))
    runnable = tuple(p.cell for p in planned if p.skip is None)
    if triton_url and any(c.backend.startswith("triton-") for c in runnable):
        from genrec_bench.backends.triton_server.server import url_problem

        problem = url_problem(triton_url)  # asked once, for every Triton cell of the run
        if problem:
            raise HarnessError(f"--triton-url {triton_url}: {problem}")
    return Plan(
        matrix,
        tuple(planned),
        RunContext(matrix=matrix, peers=runnable, triton_url=triton_url, results_path=results_path),
    )


def _availability(name: str, context: RunContext) -> tuple[bool, str, str]:
    """(ok, reason, device type) of a backend; an availability check that raises makes it unavailable, with
    what it raised as the reason, and never stops the other backends."""
    backend = get_backend(name)
    try:
        ok, why = backend.availability(context)
        device = torch.device(backend.device_for(context)).type
    except Exception as exc:  # noqa: BLE001 - a backend's own bug is that backend's skip reason
        return False, f"its availability check raised {type(exc).__name__}: {exc}", "cpu"
    return bool(ok), str(why), device


def _skip_reason(cell: Cell, ok: bool, why: str, device: str) -> str | None:
    if not ok:
        return f"{cell.backend} unavailable: {why}"
    precisions = get_backend(cell.backend).precisions
    if cell.precision not in precisions:
        return f"{cell.backend} has no {cell.precision}; its precisions: {', '.join(precisions)}"
    kernel_ok, kernel_why = kernel_availability(cell.kernel, device)
    if not kernel_ok:
        return kernel_why
    limit = presets()[cell.model].max_seq_len
    if cell.seq_len > limit:
        return f"seq_len {cell.seq_len} exceeds {cell.model}'s max_seq_len {limit}"
    if cell.scenario:  # LoadGen installed, a phase and mode scenarios run (bench/loadgen/)
        return scenario_skip(cell)
    return None
