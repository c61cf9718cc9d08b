"""Nothing lost, nothing hung: a cell's crash or hang stays in its cell, measured records survive any failure,
output paths are checked before the first cell, and configurations that cannot work say so in one line."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# A backend whose closure misbehaves at the OS level, and when: before timing (`first`), during the timed
# rounds (`timed`, after warm-up) or after them (`after`, in the oracle's further checks).
HOSTILE = """\
import os, signal, time
from genrec_bench.backends import register_backend, unregister_backend
from genrec_bench.backends.base import Backend
from genrec_bench.backends.torch_backend import TorchSession

WHAT = os.environ.get("HOSTILE", "exit:first")


class HostileSession(TorchSession):
    def runner(self, drawn):
        run, calls = super().runner(drawn), [0]
        self.runners = getattr(self, "runners", 0) + 1
        kind, when = WHAT.split(":")

        def hostile():
            calls[0] += 1
            due = {"first": calls[0] == 1, "timed": calls[0] == 4, "after": self.runners == 2}[when]
            if due and kind == "exit":
                os._exit(3)
            if due and kind == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            if due and kind == "hang":
                time.sleep(3600)
            return run()

        return hostile


class Hostile(Backend):
    name = "hostile"

    def prepare_impl(self, model, cell, context):
        return HostileSession(model, cell, "cpu")


class BrokenAvailability(Backend):
    name = "broken-availability"

    def availability(self, context=None):
        raise RuntimeError("probing the device exploded")

    def prepare_impl(self, model, cell, context):
        raise AssertionError("never prepared")


def pytest_configure(config):
    register_backend(Hostile)
    register_backend(BrokenAvailability)


def pytest_unconfigure(config):
    unregister_backend("hostile")
    unregister_backend("broken-availability")
"""
MATRIX = """\
name: hostile
axes: {{model: [tiny], backend: [{backends}], precision: [fp32], batch: [2, 3], seq_len: [16], \
phase: [prefill]}}
timing: {{warmup_rounds: 1, rounds: 4, min_rounds: 4, max_time_s: 5, timeout_s: {timeout}}}
isolation: worker
"""


def hostile_project(tmp_path, backends="hostile, torch-cpu", timeout=60):
    """A folder that runs bench cells with the hostile backends registered (in every process: the workers
    too)."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["genrec_bench.conftest", "hostile_backends"]\n')
    (tmp_path / "hostile_backends.py").write_text(HOSTILE)
    (tmp_path / "test_cells.py").write_text((ROOT / "bench" / "test_cells.py").read_text())
    (tmp_path / "m.yaml").write_text(MATRIX.format(backends=backends, timeout=timeout))
    return tmp_path


@pytest.fixture
def run(bench_command_line):
    """`run(project, *pytest_args, env=)`: the hostile project's matrix in a pytest of its own → (process,
    records by cell id or None)."""

    def run(project, *args, env=None, timeout=300):
        out = project / "out.json"
        proc = subprocess.run(
            bench_command_line(project / "m.yaml", out, "-rfs", *args),
            cwd=project,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(project), **(env or {})},
        )
        doc = json.loads(out.read_text()) if out.exists() else None
        return proc, (
            {b["extra_info"]["cell"]["id"]: b["extra_info"] for b in doc["benchmarks"]} if doc else None
        )

    return run


@pytest.mark.parametrize(
    "what, words",
    [
        ("exit:first", "its worker exited with code 3"),
        ("segv:first", "its worker killed by SIGSEGV"),
        ("exit:timed", "its worker exited with code 3"),
    ],
)
def test_a_crash_fails_only_its_cell_and_a_fresh_worker_runs_the_next(tmp_path, what, words, run):
    project = hostile_project(tmp_path)
    proc, records = run(project, env={"HOSTILE": what})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "2 failed, 2 passed" in out, out[-3000:]  # both hostile cells fail alone; both torch cells pass
    assert words in out and "Traceback" not in out.split("short test summary")[0][-2000:]
    assert {cell for cell, r in records.items() if r["numerics"]["passed"]} == {
        "tiny-torch-cpu-fp32-b2-s16-prefill",
        "tiny-torch-cpu-fp32-b3-s16-prefill",
    }


def test_a_crash_after_timing_keeps_the_measured_record_marked_failed(tmp_path, run):
    project = hostile_project(tmp_path)
    proc, records = run(project, env={"HOSTILE": "exit:after"})
    assert proc.returncode == 1
    record = records["tiny-hostile-fp32-b2-s16-prefill"]
    assert record["latency_ms"]["n"] == 4 and record["numerics"]["passed"] is False
    assert record["numerics"]["message"].startswith("failed after timing: its worker exited with code 3")


def test_a_hang_is_killed_at_the_cells_timeout_with_where_it_hung(tmp_path, run):
    project = hostile_project(tmp_path, backends="hostile", timeout=8)
    start = time.monotonic()
    proc, _ = run(project, "-k", "b2", env={"HOSTILE": "hang:first"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and time.monotonic() - start < 60, out[-3000:]
    assert "did not finish within timing.timeout_s=8 s; its worker was killed" in out
    assert "in hostile" in out  # faulthandler's stack of the hung worker names the function


def test_an_availability_check_that_raises_makes_only_its_backend_unavailable(tmp_path, run):
    project = hostile_project(tmp_path, backends="broken-availability, torch-cpu")
    (project / "m.yaml").write_text((project / "m.yaml").read_text().replace("isolation: worker\n", ""))
    proc, records = run(project)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert (
        "broken-availability unavailable: its availability check raised RuntimeError: probing the device "
        "exploded" in out
    )
    assert len(records) == 2


def test_sigterm_keeps_the_json_of_what_was_measured_and_leaves_nothing_behind(tmp_path, bench_command_line):
    project = hostile_project(tmp_path, backends="torch-cpu, hostile")  # the hanging cell runs last
    (project / "m.yaml").write_text((project / "m.yaml").read_text().replace("isolation: worker\n", ""))
    out, jsonl = project / "out.json", project / "cells.jsonl"
    proc = subprocess.Popen(
        bench_command_line(project / "m.yaml", out, "--matrix-jsonl", str(jsonl), "-k", "torch-cpu or b3"),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project), "HOSTILE": "hang:first"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both torch cells measured, the hostile one hanging: then SIGTERM
        if jsonl.exists() and len(jsonl.read_text().splitlines()) == 2:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    doc = json.loads(out.read_text())
    assert {b["extra_info"]["cell"]["id"] for b in doc["benchmarks"]} == {
        "tiny-torch-cpu-fp32-b2-s16-prefill",
        "tiny-torch-cpu-fp32-b3-s16-prefill",
    }, output[-3000:]


@pytest.mark.parametrize(
    "make_path, words",
    [
        (lambda tmp: tmp, "is a directory; name a file in it"),
        (lambda tmp: Path("/proc/self/out.json"), "cannot be written"),
        (lambda tmp: Path("/dev/full"), "is not a regular file"),
    ],
)
def test_an_output_path_that_cannot_take_the_results_stops_the_run_before_the_first_cell(
    pytester, tmp_path, make_path, words
):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_unit="def test_one():\n    pass\n")
    path = make_path(tmp_path)
    result = pytester.runpytest("--benchmark-json", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        f"ERROR: --benchmark-json {path}: {words}"
    ] or words in result.stderr.str()


@pytest.mark.parametrize("option", ["--benchmark-json", "--matrix-jsonl"])
def test_an_output_into_a_folder_that_cannot_be_written_is_one_usage_line(pytester, option):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_unit="def test_one():\n    pass\n")
    path = "/proc/self/out.json"  # a folder no one may create a file in, root included
    result = pytester.runpytest(option, path)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        f"ERROR: {option} {path}: cannot be written (No such file or directory)"
    ]


def test_an_unknown_hypothesis_profile_is_one_usage_line(pytester, monkeypatch):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_unit="def test_one():\n    pass\n")
    monkeypatch.setenv("GENREC_HYPOTHESIS_PROFILE", "nope")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: GENREC_HYPOTHESIS_PROFILE='nope' is not a Hypothesis profile; use ci or nightly"
    ]


def test_the_json_and_the_jsonl_on_one_path_is_refused(pytester, tmp_path):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    same = tmp_path / "out.json"
    result = pytester.runpytest("--benchmark-json", str(same), "--matrix-jsonl", str(same))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--benchmark-json and --matrix-jsonl both name" in result.stderr.str()


def test_a_final_write_that_fails_leaves_the_records_in_a_fallback_file(pytester):
    pytester.makeconftest("""pytest_plugins = ["genrec_bench.conftest"]
import errno
import pytest_benchmark.session as session


def pytest_configure(config):
    def full(self, output_json):
        raise OSError(errno.ENOSPC, "No space left on device", "out.json")
    session.BenchmarkSession.save_json = full
""")
    pytester.makepyfile(test_cells=(ROOT / "bench" / "test_cells.py").read_text())
    matrix = pytester.makefile(
        ".yaml",
        m="""\
name: m
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [2], seq_len: [16], phase: [prefill]}
timing: {warmup_rounds: 1, rounds: 3, min_rounds: 2, max_time_s: 0.2}
""",
    )
    result = pytester.runpytest_subprocess("--matrix", str(matrix), "--benchmark-json", "out.json")
    line = next(x for x in result.errlines if x.startswith("genrec-bench: writing the results failed"))
    fallback = Path(line.rsplit(" are in ", 1)[1])
    records = [json.loads(x) for x in fallback.read_text().splitlines()]
    fallback.unlink()
    assert [r["cell"]["id"] for r in records] == ["tiny-torch-cpu-fp32-b2-s16-prefill"]


def test_benchmark_disable_runs_the_oracle_and_writes_nothing_it_did_not_time(pytester):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_cells=(ROOT / "bench" / "test_cells.py").read_text())
    matrix = pytester.makefile(
        ".yaml",
        m="""\
name: m
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [2], seq_len: [16], \
phase: [prefill, rank]}
timing: {warmup_rounds: 1, rounds: 10, min_rounds: 2, max_time_s: 0.2}
""",
    )
    result = pytester.runpytest(
        "--matrix", str(matrix), "--benchmark-disable", "--matrix-jsonl", "cells.jsonl"
    )
    result.assert_outcomes(passed=2)
    assert (
        "each cell ran the oracle's checks, nothing was timed, no results file was written"
        in result.stdout.str()
    )
    assert not (pytester.path / "cells.jsonl").exists()


def test_cells_refuse_to_run_without_pytest_benchmark_or_under_xdist(bench_dir):
    matrix = bench_dir.makefile(
        ".yaml",
        m="""\
name: m
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [2], seq_len: [16], phase: [prefill]}
""",
    )
    result = bench_dir.runpytest("--matrix", str(matrix), "-p", "no:benchmark")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cells are timed through pytest-benchmark; do not disable it" in result.stderr.str()
    bench_dir.makepyfile(
        xdist="""\
def pytest_addoption(parser):
    parser.getgroup("xdist")._addoption("-n", "--numprocesses", default=None)  # as xdist itself registers it
"""
    )
    bench_dir.syspathinsert()  # a stand-in plugin registered under xdist's name, with its -n option
    result = bench_dir.runpytest("--matrix", str(matrix), "-p", "xdist", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "run them without pytest-xdist's -n" in result.stderr.str()


def test_a_dead_triton_url_is_one_usage_line(bench_dir):
    matrix = bench_dir.makefile(
        ".yaml",
        m="""\
name: m
axes: {model: [tiny], backend: [triton-grpc], mode: [latency], precision: [fp32], batch: [1], seq_len: [16],
       phase: [prefill]}
""",
    )
    result = bench_dir.runpytest("--matrix", str(matrix), "--triton-url", "127.0.0.1:1", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert errors == [
        "ERROR: --triton-url 127.0.0.1:1: nothing answers at 127.0.0.1:1 (its HTTP endpoint); "
        "start the server there or correct the URL"
    ]
