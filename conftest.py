"""The genrec-bench pytest plugin: options, hooks and fixtures, wired to the modules that do the work.

- `--matrix PATH` (default matrices/smoke.yaml) is loaded, validated and planned (bench/plan.py) when bench/
  cells are collected, not before: a unit-test run never reads it. A bad file stops the run with one line
  naming file, line and field.
- bench/ tests that take the `cell` fixture are parametrized with one test per cell, ids that read like the
  cell; excluded cells, unavailable backends and item-table placements a backend or phase cannot run become
  skips carrying their reason.
- Hypothesis settings profiles are registered here, once: `ci` (default) and `nightly`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
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
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The plan of the session's matrix (or the one-line error that stopped it): set when bench/ cells are
# collected.
PLAN = pytest.StashKey["object"]()
PLAN_ERROR = pytest.StashKey[str]()
WORKERS = pytest.StashKey["object"]()  # the cell workers' pool, when cells run isolated
RECORDS = pytest.StashKey[list]()  # every record of the run, kept for a fallback if the final write fails
SIGTERM = pytest.StashKey["object"]()  # the SIGTERM handler to restore


def pytest_addoption(parser):
    group = parser.getgroup("genrec-bench", "genrec-bench matrix")
    group.addoption(
        "--matrix",
        default=None,
        metavar="PATH",
        help="matrix YAML whose cells parametrize bench/ (default: matrices/smoke.yaml)",
    )
    group.addoption(
        "--matrix-backends",
        default=None,
        metavar="PATTERNS",
        help="comma-separated backend names or globs to keep, e.g. 'torch-*,ort-cpu'",
    )
    group.addoption(
        "--matrix-jsonl",
        default=None,
        metavar="PATH",
        help="also append each cell's record to PATH as it finishes (survives a run cut short)",
    )
    group.addoption(
        "--triton-url",
        default=None,
        metavar="URL",
        help="Triton cells use this running server (HOST[:HTTP_PORT] or http=H:P,grpc=H:P,metrics=H:P) "
        "instead of starting the embedded one",
    )
    group.addoption(
        "--isolation",
        default=None,
        choices=("none", "worker"),
        help="worker: each backend's cells run in a worker subprocess, so a crash or a hang (past "
        "timing.timeout_s) fails only its cell; default: the matrix's `isolation:` (none)",
    )
    group.addoption(
        "--history",
        default=None,
        metavar="DIR",
        help="after the session, add the --benchmark-json run to the history store DIR "
        "(python -m reports gate/dashboard read it)",
    )


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):  # --hypothesis-profile wins over the variable
        profile = os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci")
        try:
            settings.get_profile(profile)
        except InvalidArgument:
            raise pytest.UsageError(
                f"{HYPOTHESIS_PROFILE_ENV}={profile!r} is not a Hypothesis profile; use ci or nightly"
            ) from None
        settings.load_profile(profile)
    from genrec_bench.bench.outputs import check_outputs

    if config.getoption("history", None) and not config.getoption("benchmark_json", None):
        raise pytest.UsageError(
            "--history DIR stores the run that --benchmark-json writes: add "
            "--benchmark-json PATH (or add a file later: python -m reports history add)"
        )
    # pytest-benchmark writes its JSON only at the very end: a path that cannot take it would lose the run.
    problem = check_outputs(
        {
            "--benchmark-json": config.getoption("benchmark_json", None),
            "--matrix-jsonl": config.getoption("matrix_jsonl"),
        }
    )
    if problem:
        raise pytest.UsageError(problem)
    config.stash[RECORDS] = []
    if threading.current_thread() is threading.main_thread():
        # SIGTERM as Ctrl-C: the session unwinds (sessions close, servers and workers stop) and the JSON is
        # written, instead of the process dying with every measured cell.
        config.stash[SIGTERM] = signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pytest_unconfigure(config):
    workers = config.stash.get(WORKERS, None)
    if workers is not None:
        workers.close()
    # The embedded Triton server is shared by a session's cells: stop it (SIGTERM and wait) when it ends.
    server = sys.modules.get("genrec_bench.backends.triton_server.server")
    if server is not None:
        server.shutdown_all()
    if SIGTERM in config.stash:
        signal.signal(signal.SIGTERM, config.stash[SIGTERM])


def _plan(config):
    """The session's plan, made on first use (the first bench/ test that takes `cell`)."""
    if PLAN not in config.stash and PLAN_ERROR not in config.stash:
        from genrec_bench.bench.plan import DEFAULT_MATRIX, plan
        from genrec_bench.matrices import HarnessError

        try:
            results = config.getoption("benchmark_json", None)  # a path, or an open file before 5.3
            if results is not None and not isinstance(results, (str, os.PathLike)):
                results = results.name
            config.stash[PLAN] = plan(
                config.getoption("--matrix") or str(ROOT / DEFAULT_MATRIX),
                backends=config.getoption("--matrix-backends"),
                triton_url=config.getoption("--triton-url"),
                results_path=str(Path(results).resolve()) if results else None,
            )
        except HarnessError as err:
            config.stash[PLAN_ERROR] = str(err)
    return config.stash.get(PLAN, None)


def _refusal(config) -> str | None:
    """Why bench/ cells cannot run under this pytest configuration, or None."""
    if not config.pluginmanager.hasplugin("benchmark"):
        return "genrec-bench cells are timed through pytest-benchmark; do not disable it (-p no:benchmark)"
    if config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None):
        return (
            "genrec-bench cells time one at a time on one machine; run them without pytest-xdist's -n "
            "(parallel cells would share, and disturb, the device they measure)"
        )
    return None


def pytest_generate_tests(metafunc):
    if "cell" not in metafunc.fixturenames:
        return
    from genrec_bench.bench.timing import SAMPLE_CLOCK

    refusal = _refusal(metafunc.config)
    if refusal and PLAN_ERROR not in metafunc.config.stash:
        metafunc.config.stash[PLAN_ERROR] = refusal
    planned = None if refusal else _plan(metafunc.config)
    params = []
    for item in planned.cells if planned is not None else ():
        cell = item.cell
        marks = [pytest.mark.skip(reason=item.skip)] if item.skip else []
        # timer=SAMPLE_CLOCK: pytest-benchmark's stats are the cell's own samples (see bench/timing.py).
        # A scenario cell's samples are per-sample latencies under load: a group of their own.
        group = f"{cell.model}-{cell.phase}-b{cell.batch}-s{cell.seq_len}" + (
            f"-{cell.scenario}" if cell.scenario else ""
        )
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
    planned = session.config.stash.get(PLAN, None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if planned is not None and reporter is not None:
        for warning in planned.matrix.warnings:
            reporter.write_line(f"genrec-bench: warning: {warning}", yellow=True)
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


@pytest.fixture
def cell_runner(request):
    """run_cell in this process, or in the cell's backend worker when the run is isolated."""
    from genrec_bench.bench.cell_runner import run_cell

    config = request.config
    planned = _plan(config)
    if (config.getoption("--isolation") or planned.matrix.isolation) != "worker":
        return run_cell
    from genrec_bench.bench.isolation import WorkerPool, run_cell_in_worker

    if WORKERS not in config.stash:
        config.stash[WORKERS] = WorkerPool(planned.matrix.path)
    pool = config.stash[WORKERS]
    return lambda benchmark, cell, context: run_cell_in_worker(benchmark, cell, context, pool)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if call.when != "call" or bench is None or not bench.extra_info:
        return report
    item.config.stash[RECORDS].append(bench.extra_info)
    path = item.config.getoption("matrix_jsonl", None)
    if path:
        import json

        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(bench.extra_info) + "\n")
        except (
            OSError
        ) as exc:  # checked writable at the start; a disk that filled since costs the line, not the run
            report.sections.append(("genrec-bench", f"--matrix-jsonl {path}: not written ({exc.strerror})"))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session, exitstatus):
    try:
        result = yield  # pytest-benchmark writes --benchmark-json in here
    except OSError as exc:  # its final JSON write failed (the disk filled during the run)
        from genrec_bench.bench.outputs import write_fallback

        records = session.config.stash.get(RECORDS, [])
        sys.stderr.write(write_fallback(records, f"{exc.filename or ''}: {exc.strerror or exc}") + "\n")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return None
    _add_to_history(session)
    return result


def _add_to_history(session) -> None:
    """--history DIR: the run pytest-benchmark just wrote goes into the history store."""
    history, out = session.config.getoption("history", None), session.config.getoption("benchmark_json", None)
    if not history or out is None:
        return
    from genrec_bench.matrices import HarnessError
    from genrec_bench.reports.history import add, read_run

    name = str(out) if isinstance(out, (str, os.PathLike)) else getattr(out, "name", str(out))
    try:
        if not Path(name).is_file():  # pytest-benchmark writes no file when no benchmark ran
            line = f"genrec-bench: no benchmark ran, so nothing was added to the history {history}"
        else:
            target, added = add(history, read_run(name))
            line = f"genrec-bench: run {'added to' if added else 'already in'} the history: {target}"
    except HarnessError as err:
        line = f"genrec-bench: not added to the history {history}: {err}"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: absent under -p no:benchmark
def pytest_benchmark_update_machine_info(config, machine_info):
    import torch

    from genrec_bench.bench.env import environment

    # Only what does not change within a run on one machine (not the versions of lazily loaded libraries,
    # which each record's env holds), so `--benchmark-compare` of two runs on one machine finds them equal.
    env = environment("cuda:0" if torch.cuda.is_available() else "cpu")
    machine_info["genrec"] = {k: v for k, v in env.items() if k != "loaded"}


def pytest_terminal_summary(terminalreporter, config):
    planned = config.stash.get(PLAN, None)
    out = config.getoption("benchmark_json", None)
    if planned is not None and config.getoption("benchmark_disable", False):
        terminalreporter.write_line(
            "genrec-bench: pytest-benchmark is disabled: each cell ran the oracle's checks, "
            "nothing was timed, no results file was written"
        )
        return
    if planned is not None and out is not None and terminalreporter.stats.get("passed"):
        # A path from pytest-benchmark 5.3+, an open file from older releases.
        name = str(out) if isinstance(out, (str, os.PathLike)) else getattr(out, "name", out)
        terminalreporter.write_line(
            f"genrec-bench: matrix {planned.matrix.path} → {Path(name).resolve()}; "
            f"summary: python -m reports summary {name}"
        )
