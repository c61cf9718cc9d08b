"""The pytest plugin: when it reads the matrix, how cells become tests, and one line for a mistake."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_MATRIX = """\
name: plugin-test
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [2], seq_len: [16], \
phase: [prefill, rank]}
timing: {warmup_rounds: 1, rounds: 3, min_rounds: 2, max_time_s: 0.2}
"""


def test_a_bad_matrix_stops_the_run_with_one_usage_line(bench_dir):
    matrix = bench_dir.makefile(".yaml", bad=TINY_MATRIX.replace("batch: [2]", "batch: [2, 0]"))
    result = bench_dir.runpytest("--matrix", str(matrix), "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert errors == [f"ERROR: {matrix}:2: axes.batch[1]: must be a positive integer, got 0"]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_run_without_bench_cells_never_reads_the_matrix(pytester):
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_unit="def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("--matrix", str(pytester.path / "does-not-exist.yaml"))
    result.assert_outcomes(passed=1)


def test_cells_are_tests_with_ids_that_read_like_them_and_skips_that_say_why(bench_dir):
    matrix = bench_dir.makefile(
        ".yaml",
        m=TINY_MATRIX
        + """\
include:
  - {backend: torch-cuda, phase: prefill, reason: "beside the CPU cell"}
exclude:
  - {phase: rank, reason: "not this time"}
""",
    )
    result = bench_dir.runpytest("--matrix", str(matrix), "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    # The product of the axes first (in run order), then what the include rules add.
    result.stdout.fnmatch_lines(
        [
            "test_cells.py::test_cell[[]tiny-torch-cpu-fp32-b2-s16-prefill[]]",
            "test_cells.py::test_cell[[]tiny-torch-cpu-fp32-b2-s16-rank[]]",
            "test_cells.py::test_cell[[]tiny-torch-cuda-fp32-b2-s16-prefill[]]",
        ]
    )
    reports = bench_dir.inline_run("--matrix", str(matrix), "-k", "rank or cuda")
    skipped = {
        r.nodeid.split("[", 1)[1][:-1]: r.longrepr[2]
        for r in reports.getreports("pytest_runtest_logreport")
        if r.skipped
    }
    assert skipped["tiny-torch-cpu-fp32-b2-s16-rank"] == "Skipped: not this time"
    assert skipped["tiny-torch-cuda-fp32-b2-s16-prefill"].startswith(
        "Skipped: torch-cuda unavailable: torch "
    )


def test_a_backend_filter_that_matches_nothing_is_a_mistake(bench_dir):
    matrix = bench_dir.makefile(".yaml", m=TINY_MATRIX)
    result = bench_dir.runpytest("--matrix", str(matrix), "--matrix-backends", "torch_cpu", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--matrix-backends: 'torch_cpu' matches no registered backend; registered:" in result.stderr.str()


USER_BACKEND = '''\
"""A user's backend, in a project whose own model code is a package called `models`."""
import models.ranking  # the user's package, not genrec-bench's
from genrec_bench.backends.base import Backend
from genrec_bench.backends.torch_backend import TorchSession


class AcmeSession(TorchSession):
    def info(self):
        return {**super().info(), "acme_models": models.ranking.__file__, "acme_kind": models.ranking.KIND}


class AcmeTorch(Backend):
    name = "acme-torch"

    def prepare_impl(self, model, cell, context):
        return AcmeSession(model, cell, "cpu")
'''


def test_a_user_package_called_models_registers_a_backend_and_runs_bench_cells(pytester):
    """The user's project: its own `models` package and a backend registered through the entry-point group
    (an installed distribution's metadata), run with `pytest <genrec-bench>/bench` from the project's
    folder."""
    project = pytester.path
    (project / "models").mkdir()
    (project / "models" / "__init__.py").write_text("")
    (project / "models" / "ranking.py").write_text("KIND = 'acme two-tower'\n")
    (project / "acme_backend.py").write_text(USER_BACKEND)
    dist = project / "acme_recs-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-recs\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[genrec_bench.backends]\nacme-torch = acme_backend:AcmeTorch\n")
    matrix = pytester.makefile(
        ".yaml", acme=TINY_MATRIX.replace("backend: [torch-cpu]", "backend: [acme-torch]")
    )
    out = project / "out.json"
    result = pytester.runpytest_subprocess(
        str(ROOT / "bench" / "test_cells.py"),
        "--matrix",
        str(matrix),
        "--benchmark-json",
        str(out),
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)
    records = [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]
    assert {r["cell"]["id"] for r in records} == {
        "tiny-acme-torch-fp32-b2-s16-prefill",
        "tiny-acme-torch-fp32-b2-s16-rank",
    }
    for record in records:
        assert record["backend"]["acme_models"] == str(project / "models" / "ranking.py")
        assert record["backend"]["acme_kind"] == "acme two-tower"
        assert record["numerics"]["passed"] is True
