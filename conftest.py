"""The genrec-bench pytest plugin: options, hooks and fixtures, wired to the modules that do the work.

- `--matrix PATH` (default matrices/smoke.yaml) is loaded, validated and planned (bench/plan.py) when bench/
  cells are collected, not before: a unit-test run never reads it. A bad file stops the run with one line
  naming file, line and field.
- bench/ tests that take the `cell` fixture are parametrized with one test per cell, ids that read like the
  cell; excluded cells and unavailable backends become skips carrying their reason.
- Hypothesis settings profiles are registered here, once: `ci` (default) and `nightly`.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _import_this_checkout_as_genrec_bench() -> None:
    """`genrec_bench.<folder>` names this checkout's folders, installed or not; the checkout itself stays off
    sys.path (`python -m pytest` puts the working directory there), so its generic top-level names (`models`,
    `backends`, ...) never shadow a user's own packages."""
    current = sys.modules.get("genrec_bench")
    if current is None or list(getattr(current, "__path__", [])) != [str(ROOT)]:
        package = types.ModuleType("genrec_bench")
        package.__path__ = [str(ROOT)]
        sys.modules["genrec_bench"] = package
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != ROOT]


_import_this_checkout_as_genrec_bench()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.errors import InvalidArgument  # noqa: E402

# Without a CUDA device the Triton kernels can only run in Triton's interpreter, which must be chosen before
# triton is imported; an explicit TRITON_INTERPRET in the environment wins.
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

HYPOTHESIS_PROFILE_ENV = "GENREC_HYPOTHESIS_PROFILE"
settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The plan of the session's matrix (or the one-line error that stopped it): set when bench/ cells are collected.
PLAN = pytest.StashKey["object"]()
PLAN_ERROR = pytest.StashKey[str]()


def pytest_addoption(parser):
    group = parser.getgroup("genrec-bench", "genrec-bench matrix")
    group.addoption("--matrix", default=None, metavar="PATH",
                    help="matrix YAML whose cells parametrize bench/ (default: matrices/smoke.yaml)")
    group.addoption("--matrix-backends", default=None, metavar="PATTERNS",
                    help="comma-separated backend names or globs to keep, e.g. 'torch-*,ort-cpu'")
    group.addoption("--matrix-jsonl", default=None, metavar="PATH",
                    help="also append each cell's record to PATH as it finishes (survives a run cut short)")
    group.addoption("--triton-url", default=None, metavar="URL",
                    help="Triton cells use this running server (HOST[:HTTP_PORT] or http=H:P,grpc=H:P,metrics=H:P) "
                         "instead of starting the embedded one")


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):  # --hypothesis-profile wins over the variable
        profile = os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci")
        try:
            settings.get_profile(profile)
        except InvalidArgument:
            raise pytest.UsageError(f"{HYPOTHESIS_PROFILE_ENV}={profile!r} is not a Hypothesis profile; "
                                    f"use ci or nightly") from None
        settings.load_profile(profile)
    for option in ("benchmark_json", "matrix_jsonl"):
        # pytest-benchmark opens its JSON only at the very end: a missing folder would lose the whole run.
        out = config.getoption(option, None)
        if isinstance(out, (str, os.PathLike)):  # older pytest-benchmark hands over an already open file
            Path(out).parent.mkdir(parents=True, exist_ok=True)


def pytest_unconfigure(config):
    # The embedded Triton server is shared by a session's cells: stop it (SIGTERM and wait) when it ends.
    server = sys.modules.get("genrec_bench.backends.triton_server.server")
    if server is not None:
        server.shutdown_all()


def _plan(config):
    """The session's plan, made on first use (the first bench/ test that takes `cell`)."""
    if PLAN not in config.stash and PLAN_ERROR not in config.stash:
        from genrec_bench.bench.plan import DEFAULT_MATRIX, plan
        from genrec_bench.matrices import HarnessError

        try:
            results = config.getoption("benchmark_json", None)  # a path, or an open file before 5.3
            if results is not None and not isinstance(results, (str, os.PathLike)):
                results = results.name
            config.stash[PLAN] = plan(config.getoption("--matrix") or str(ROOT / DEFAULT_MATRIX),
                                      backends=config.getoption("--matrix-backends"),
                                      triton_url=config.getoption("--triton-url"),
                                      results_path=str(Path(results).resolve()) if results else None)
        except HarnessError as err:
            config.stash[PLAN_ERROR] = str(err)
    return config.stash.get(PLAN, None)


def pytest_generate_tests(metafunc):
    if "cell" not in metafunc.fixturenames:
        return
    from genrec_bench.bench.timing import SAMPLE_CLOCK

    planned = _plan(metafunc.config)
    params = []
    for item in planned.cells if planned is not None else ():
        cell = item.cell
        marks = [pytest.mark.skip(reason=item.skip)] if item.skip else []
        # timer=SAMPLE_CLOCK: pytest-benchmark's stats are the cell's own samples (see bench/timing.py).
        # A scenario cell's samples are per-sample latencies under load: a group of their own.
        group = f"{cell.model}-{cell.phase}-b{cell.batch}-s{cell.seq_len}" + (f"-{cell.scenario}" if cell.scenario else "")
        marks.append(pytest.mark.benchmark(group=group, timer=SAMPLE_CLOCK))
        # The parameter is the cell's id, so pytest-benchmark's `params` serialise (`--group-by param:cell`).
        params.append(pytest.param(cell.id, id=cell.id, marks=marks))
    metafunc.parametrize("cell", params, indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    result = yield
    # A matrix mistake found while bench/ cells were being collected stops the run as a usage error: one line.
    if PLAN_ERROR in session.config.stash:
        raise pytest.UsageError(session.config.stash[PLAN_ERROR])
    return result


@pytest.fixture
def cell(request):
    """The Cell a parametrized bench/ test measures (its parameter is the cell's id)."""
    return _plan(request.config).cell(request.param)


@pytest.fixture
def matrix(request):
    """The loaded Matrix (timing, tolerances, extra sections)."""
    return _plan(request.config).matrix


@pytest.fixture
def run_context(request):
    """What every backend of the run is told: the matrix, the runnable cells (peers), run options."""
    return _plan(request.config).context


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    path = item.config.getoption("matrix_jsonl", None)
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if call.when == "call" and path and bench is not None and bench.extra_info:
        import json

        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(bench.extra_info) + "\n")
    return report


def pytest_benchmark_update_machine_info(config, machine_info):
    import torch

    from genrec_bench.bench.env import environment

    # Only what does not change within a run on one machine (not the versions of lazily loaded libraries, which
    # each record's env holds), so `--benchmark-compare` of two runs on one machine finds them equal.
    env = environment("cuda:0" if torch.cuda.is_available() else "cpu")
    machine_info["genrec"] = {k: v for k, v in env.items() if k != "loaded"}


def pytest_terminal_summary(terminalreporter, config):
    planned = config.stash.get(PLAN, None)
    out = config.getoption("benchmark_json", None)
    if planned is not None and out is not None and terminalreporter.stats.get("passed"):
        # A path from pytest-benchmark 5.3+, an open file from older releases.
        name = str(out) if isinstance(out, (str, os.PathLike)) else getattr(out, "name", out)
        terminalreporter.write_line(f"genrec-bench: matrix {planned.matrix.path} → {Path(name).resolve()}; "
                                    f"summary: python -m reports summary {name}")
