"""One benchmark per matrix cell (parametrized by the plugin in conftest.py)."""
import pytest

from genrec_bench.bench.cell_runner import run_cell
from genrec_bench.matrices.errors import BackendError, BackendUnavailable, OracleMismatch


def test_cell(benchmark, cell, matrix, matrix_cells):
    try:
        run_cell(benchmark, cell, matrix, matrix_cells)
    except BackendUnavailable as err:
        pytest.skip(err.reason)
    except (BackendError, OracleMismatch) as err:
        # One line, no traceback: the message names the backend, the cell and what went wrong.
        pytest.fail(str(err), pytrace=False)
