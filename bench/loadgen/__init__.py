"""MLPerf LoadGen scenario cells: LoadGen's own SingleStream, MultiStream, Server and Offline scenarios over
any backend's Session, its Query Sample Library drawn from the preset's workload, its logs parsed into the
record's `scenario` section, and its accuracy mode checked by the oracle.

- settings.py: the matrix's `scenario:` section and a calibration → LoadGen TestSettings
- qsl.py: the seeded users and their fp32 reference (computed once, outside any measurement)
- completion.py: how a SUT answers LoadGen (responses, per-sample latencies, errors)
- sut_batcher.py: in-process sessions — a batcher thread over one bucket runner per batch size
- sut_served.py: served sessions — each query sent as requests through tritonclient's asyncio client
- logs.py: mlperf_log_summary.txt / mlperf_log_detail.txt → the record's `scenario.result`
- accuracy.py: mlperf_log_accuracy.json → the oracle over every sample
- peak.py: the Server peak search (pure)
- runner.py: one scenario cell from calibration to record section

`mlperf_loadgen` (the `loadgen` extra, PyPI `mlcommons-loadgen`) is imported only when a scenario runs;
without it scenario cells are skipped with the install hint.
"""

from __future__ import annotations

import importlib.util

from genrec_bench.matrices.cells import Cell

INSTALL_HINT = "pip install 'genrec-bench[loadgen]' (PyPI mlcommons-loadgen)"
SCENARIO_PHASES = ("prefill", "rank")
# The Triton backends' modes other than `latency` are per-call serving scenarios of their own
# (bench/serving/).
PER_CALL_SERVING_MODES = ("sweep", "poisson", "crosscheck")


def scenario_skip(cell: Cell) -> str | None:
    """Why a scenario cell cannot run here (None when it can): no LoadGen, a phase scenarios do not serve, or
    a serving mode that is itself a scenario."""
    if importlib.util.find_spec("mlperf_loadgen") is None:
        return f"MLPerf LoadGen (mlperf_loadgen) is not installed; {INSTALL_HINT}"
    if cell.phase not in SCENARIO_PHASES:
        return (
            f"scenario cells run {' and '.join(SCENARIO_PHASES)}: a {cell.phase} sample needs a KV cache "
            f"built per user, which the Query Sample Library does not hold"
        )
    if cell.mode in PER_CALL_SERVING_MODES:
        return (
            f"mode {cell.mode} is a per-call serving scenario of its own; LoadGen scenario cells of a served "
            f"backend take mode latency"
        )
    return None


def run_scenario(benchmark, session, cell, context, tolerance):
    """Run `cell`'s LoadGen scenario over a prepared `session` and hand its samples to `benchmark`
    (runner.py)."""
    from genrec_bench.bench.loadgen.runner import run_scenario as run

    return run(benchmark, session, cell, context, tolerance)
