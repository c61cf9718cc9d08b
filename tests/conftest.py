"""Fixtures shared across the test folders (pytest imports test modules by path, so helpers live here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench_command(matrix: Path | str, out: Path, *extra: str, target: str | None = None) -> list[str]:
    """The command line `pytest [target] -q -p no:cacheprovider --matrix MATRIX --benchmark-json OUT *extra`
    in this interpreter (no target: pytest collects from the working directory)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        *([target] if target else []),
        "-q",
        "-p",
        "no:cacheprovider",
        "--matrix",
        str(matrix),
        "--benchmark-json",
        str(out),
        *extra,
    ]


def bench_process(
    matrix: Path | str,
    out: Path,
    *extra: str,
    target: str = "bench/test_cells.py",
    env=None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """`bench_command(...)` run to its end from the checkout's root: a session of its own, so its start and
    teardown (the plugin's) are part of what a test sees."""
    return subprocess.run(
        bench_command(matrix, out, *extra, target=target),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _run_bench(tmp_path: Path, matrix_text: str, *extra: str):
    """`pytest bench/ --matrix <matrix_text> --benchmark-json` in a subprocess: (process, JSON document or
    None)."""
    matrix, out = tmp_path / "m.yaml", tmp_path / "out.json"
    matrix.write_text(matrix_text)
    proc = bench_process(matrix, out, *extra, target="bench/")
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture(scope="session")
def bench_subprocess():
    """`bench_subprocess(matrix_path, out_json, *pytest_args, target=, env=, timeout=)`: see bench_process."""
    return bench_process


@pytest.fixture(scope="session")
def bench_command_line():
    """`bench_command_line(matrix_path, out_json, *pytest_args, target=None)`: the command, for a test that
    starts the process itself (to signal it, say); see bench_command."""
    return bench_command


@pytest.fixture(scope="session")
def run_bench():
    """The bench for real, in a subprocess: `run_bench(tmp_path, matrix_text, *pytest_args)`."""
    return _run_bench
