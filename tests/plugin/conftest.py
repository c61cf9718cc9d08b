"""The plugin's own tests run pytest inside pytest, with pytest's `pytester` (`-p pytester` in
pyproject.toml), as pytest-benchmark's do."""

from pathlib import Path

import pytest

# In-process runs restore sys.modules afterwards, and extension modules (numpy's, scipy's) cannot be imported
# twice in one process: import what a cell uses before the first inner run.
import genrec_bench.bench.cell_runner  # noqa: F401,E402
import genrec_bench.bench.plan  # noqa: F401,E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_dir(pytester):
    """A folder like the repository's bench/: the genrec-bench plugin and the one-test-per-cell module."""
    pytester.makeconftest('pytest_plugins = ["genrec_bench.conftest"]\n')
    pytester.makepyfile(test_cells=(ROOT / "bench" / "test_cells.py").read_text())
    return pytester
