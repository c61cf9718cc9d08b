"""One benchmark per matrix cell (parametrized by the plugin in conftest.py)."""

import pytest

from genrec_bench.matrices.errors import BackendError, BackendUnavailable, OracleMismatch


def test_cell(benchmark, cell, run_context, cell_runner):
    failure = skip = None
    try:
        cell_runner(benchmark, cell, run_context)
    except BackendUnavailable as err:
        skip = err.reason
    except (BackendError, OracleMismatch) as err:
        failure = str(err)
    # Outside the except blocks: one line, no traceback, and no "during handling of the above exception".
    if skip is not None:
        pytest.skip(skip)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
