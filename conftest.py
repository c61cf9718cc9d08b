"""The genrec-bench pytest plugin.

- `--matrix PATH` (default matrices/smoke.yaml) is loaded and validated at start-up; a bad file stops the run
  with one line naming file, line and field.
- bench/ tests that take the `cell` fixture are parametrized with one test per cell, ids that read like the cell;
  excluded cells, unavailable backends and item-table placements a backend or phase cannot run become skips
  carrying their reason.
- Hypothesis settings profiles are registered here, once: `ci` (default) and `nightly`.
"""
from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).parent
DEFAULT_MATRIX = "matrices/smoke.yaml"

# Without a CUDA device the Triton kernels can only run in Triton's interpreter, which must be chosen before
# triton is imported; an explicit TRITON_INTERPRET in the environment wins.
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("GENREC_HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    group = parser.getgroup("genrec-bench", "genrec-bench matrix")
    group.addoption("--matrix", default=None, metavar="PATH",
                    help=f"matrix YAML whose cells parametrize bench/ (default: {DEFAULT_MATRIX})")
    group.addoption("--matrix-backends", default=None, metavar="PATTERNS",
                    help="comma-separated backend names or globs to keep, e.g. 'torch-*,ort-cpu'")
    group.addoption("--matrix-jsonl", default=None, metavar="PATH",
                    help="also append each cell's record to PATH as it finishes (survives a run cut short)")
    group.addoption("--triton-url", default=None, metavar="URL",
                    help="Triton cells use this running server (HOST[:HTTP_PORT] or http=H:P,grpc=H:P,metrics=H:P) "
                         "instead of starting the embedded one")


def pytest_configure(config):
    from backends import backend_modes, load_entry_points
    from kernels.interaction import KERNELS
    from matrices import HarnessError, Known, load_matrix
    from models import presets

    for option in ("benchmark_json", "matrix_jsonl"):
        # pytest-benchmark opens its JSON only at the very end: a missing folder would lose the whole run.
        out = config.getoption(option, None)
        if isinstance(out, (str, os.PathLike)):  # older pytest-benchmark hands over an already open file
            Path(out).parent.mkdir(parents=True, exist_ok=True)
    try:
        load_entry_points()
        known = Known(backends=backend_modes(), models=tuple(presets()), kernels=tuple(KERNELS))
        path = config.getoption("--matrix") or str(ROOT / DEFAULT_MATRIX)
        config._genrec_matrix = load_matrix(path, known)
        config._genrec_known = known
        from backends.triton import configure as configure_triton

        configure_triton(spec=config._genrec_matrix.sections.get("serving"), url=config.getoption("--triton-url"))
    except HarnessError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_unconfigure(config):
    # The embedded Triton server is shared by a session's cells: stop it (SIGTERM and wait) when it ends.
    server = sys.modules.get("backends.triton.server")
    if server is not None:
        server.shutdown_all()


def _backend_filter(config):
    raw = config.getoption("--matrix-backends")
    patterns = [p.strip() for p in raw.split(",") if p.strip()] if raw else []
    return lambda name: not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def pytest_generate_tests(metafunc):
    if "cell" not in metafunc.fixturenames:
        return
    import torch

    from backends import get_backend
    from kernels import kernel_availability
    from matrices.embedding import cell_placement
    from models import preset
    from models.embedding import phase_problem

    config = metafunc.config
    matrix, keep = config._genrec_matrix, _backend_filter(config)
    availability: dict[str, tuple[bool, str]] = {}
    backends, devices = {}, {}
    params, runnable = [], []
    for cell, excluded in matrix.cells(config._genrec_known):
        if not keep(cell.backend):
            continue
        if cell.backend not in availability:
            backends[cell.backend] = backend = get_backend(cell.backend)
            availability[cell.backend] = backend.availability()
            devices[cell.backend] = torch.device(backend.device).type
        ok, why = availability[cell.backend]
        kernel_ok, kernel_why = kernel_availability(cell.kernel, devices[cell.backend])
        limit = preset(cell.model).max_seq_len
        placement = cell_placement(preset(cell.model).embedding, cell.embedding)
        reason = (excluded
                  or (None if ok else f"{cell.backend} unavailable: {why}")
                  or (None if kernel_ok else kernel_why)
                  or (f"seq_len {cell.seq_len} exceeds {cell.model}'s max_seq_len {limit}"
                      if cell.seq_len > limit else None)
                  or backends[cell.backend].placement_problem(placement)
                  or phase_problem(cell.phase, placement))
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        marks.append(pytest.mark.benchmark(group=f"{cell.model}-{cell.phase}-b{cell.batch}-s{cell.seq_len}"))
        params.append(pytest.param(cell, id=cell.id, marks=marks))
        if not reason:
            runnable.append(cell)
    config._genrec_cells = tuple(runnable)
    metafunc.parametrize("cell", params)


@pytest.fixture
def matrix(request):
    """The loaded Matrix (timing, tolerances, extra sections)."""
    return request.config._genrec_matrix


@pytest.fixture
def matrix_cells(request):
    """Every runnable cell of the matrix (after filters and skips): the peers a backend may size engines for."""
    return getattr(request.config, "_genrec_cells", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    path = item.config.getoption("matrix_jsonl", None)
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if call.when == "call" and path and bench is not None and bench.extra_info:
        import json

        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(bench.extra_info) + "\n")


def pytest_benchmark_update_machine_info(config, machine_info):
    import torch

    from bench.env import environment

    machine_info["genrec"] = environment("cuda:0" if torch.cuda.is_available() else "cpu")


def pytest_terminal_summary(terminalreporter, config):
    matrix = getattr(config, "_genrec_matrix", None)
    out = config.getoption("benchmark_json", None)
    if matrix is not None and out is not None and terminalreporter.stats.get("passed"):
        # A path from pytest-benchmark 5.3+, an open file from older releases.
        name = str(out) if isinstance(out, (str, os.PathLike)) else getattr(out, "name", out)
        terminalreporter.write_line(f"genrec-bench: matrix {matrix.path} → {name}; "
                                    f"summary: python -m reports summary {name}")
