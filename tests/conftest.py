"""Fixtures shared across the test folders (pytest imports test modules by path, so helpers live here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_bench(tmp_path: Path, matrix_text: str, *extra: str):
    """`pytest bench/ --matrix <matrix_text> --benchmark-json` in a subprocess: (process, JSON document or
    None)."""
    matrix, out = tmp_path / "m.yaml", tmp_path / "out.json"
    matrix.write_text(matrix_text)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "bench/",
            "-q",
            "-p",
            "no:cacheprovider",
            "--matrix",
            str(matrix),
            "--benchmark-json",
            str(out),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.fixture(scope="session")
def run_bench():
    """The bench for real, in a subprocess: `run_bench(tmp_path, matrix_text, *pytest_args)`."""
    return _run_bench
