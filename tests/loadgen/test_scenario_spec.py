"""The `scenario:` section and the `scenario` axis: defaults, a full section, ids that read like the cell, and
one MatrixError naming file, line and field for every kind of mistake."""

import textwrap
from pathlib import Path

import pytest

from genrec_bench.matrices import Cell, Known, MatrixError, load_matrix
from genrec_bench.matrices.scenario import PeakSpec, ScenarioSpec, ServerSpec, scenario_spec

KNOWN = Known(
    backends={"torch-cpu": ("eager", "compile"), "triton-grpc": ("latency", "sweep")}, models=("tiny",)
)
AXES = """\
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [8], seq_len: [32], phase: [prefill]}
"""


def load(tmp_path, text, axes=AXES):
    path = tmp_path / "m.yaml"
    path.write_text(axes + textwrap.dedent(text))
    return load_matrix(str(path), KNOWN)


def test_no_section_and_no_axis_leave_every_id_as_it_was(tmp_path):
    matrix = load(tmp_path, "")
    assert [c.id for c, _ in matrix.cells(KNOWN)] == ["tiny-torch-cpu-fp32-b8-s32-prefill"]
    assert scenario_spec(matrix) == ScenarioSpec()
    assert Cell("tiny", "torch-cpu", "eager", "fp32", 8, 32, "prefill").scenario == ""


def test_the_scenario_axis_and_rules_name_scenarios(tmp_path):
    axes = AXES.replace("phase: [prefill]}", "phase: [prefill], scenario: [none, server]}")
    matrix = load(
        tmp_path,
        """\
        include:
          - {backend: triton-grpc, mode: latency, scenario: offline, reason: "served Offline"}
        exclude:
          - {scenario: none, reason: "per-call cells run elsewhere"}
        """,
        axes=axes,
    )
    cells = {c.id: reason for c, reason in matrix.cells(KNOWN)}
    assert cells == {
        "tiny-torch-cpu-fp32-b8-s32-prefill": "per-call cells run elsewhere",
        "tiny-torch-cpu-fp32-b8-s32-prefill-server": None,
        "tiny-triton-grpc-latency-fp32-b8-s32-prefill-offline": None,
    }
    odd = Cell("tiny", "torch-cpu", "compile", "bf16", 8, 32, "rank", kernel="triton", scenario="multistream")
    assert odd.id == "tiny-torch-cpu-compile-bf16-b8-s32-rank-ktriton-multistream"


def test_a_full_section(tmp_path):
    spec = scenario_spec(
        load(
            tmp_path,
            """\
        scenario:
          performance_sample_count: 64
          seed: 3
          min_duration_ms: 500
          accuracy: false
          batcher: {max_wait_ms: 0, buckets: [1, 4, 8]}
          multistream: {samples_per_query: 4, expected_latency_ms: 2.5}
          server: {target_qps: 150, latency_bound_ms: 20, percentile: 0.9, min_duration_ms: 800,
                   peak: {enabled: true, max_probes: 5, min_qps: 10, max_qps: 1000}}
          offline: {expected_qps: null}
        """,
        )
    )
    assert spec.performance_sample_count == 64 and spec.seed == 3 and spec.accuracy is False
    assert spec.batcher.buckets == (1, 4, 8) and spec.batcher.max_wait_ms == 0.0
    assert spec.multistream.samples_per_query == 4 and spec.multistream.expected_latency_ms == 2.5
    assert spec.server == ServerSpec(
        target_qps=150.0,
        latency_bound_ms=20.0,
        percentile=0.9,
        min_duration_ms=800,
        peak=PeakSpec(enabled=True, max_probes=5, min_qps=10.0, max_qps=1000.0),
    )
    assert spec.of("server").min_duration_ms == 800 and spec.of("offline").min_duration_ms == 500
    assert spec.offline.expected_qps is None  # null: calibrated


# (name, section text, line, field, words)
BAD = [
    ("not a mapping", "scenario: 5\n", 2, "scenario", "must be a mapping"),
    (
        "unknown key",
        "scenario:\n  min_duration: 5\n",
        3,
        "scenario.min_duration",
        "unknown key; expected one of",
    ),
    ("unknown nested key", "scenario:\n  server: {qps: 5}\n", 3, "scenario.server.qps", "unknown key"),
    ("nested not a mapping", "scenario:\n  server: 5\n", 3, "scenario.server", "must be a mapping"),
    (
        "infinite qps",
        "scenario:\n  server: {target_qps: .inf}\n",
        3,
        "scenario.server.target_qps",
        "is not a finite decimal number",
    ),
    (
        "nan bound",
        "scenario:\n  server: {latency_bound_ms: .nan}\n",
        3,
        "scenario.server.latency_bound_ms",
        "is not a finite decimal number",
    ),
    (
        "zero bound",
        "scenario:\n  server: {latency_bound_ms: 0}\n",
        3,
        "scenario.server.latency_bound_ms",
        "must be greater than 0",
    ),
    (
        "percentile of one",
        "scenario:\n  server: {percentile: 1}\n",
        3,
        "scenario.server.percentile",
        "at most 0.9999",
    ),
    (
        "string count",
        "scenario:\n  performance_sample_count: many\n",
        3,
        "scenario.performance_sample_count",
        "must be an integer",
    ),
    (
        "bool count",
        "scenario:\n  min_duration_ms: true\n",
        3,
        "scenario.min_duration_ms",
        "must be an integer",
    ),
    (
        "float count",
        "scenario:\n  singlestream: {min_query_count: 2.5}\n",
        3,
        "scenario.singlestream.min_query_count",
        "must be an integer",
    ),
    (
        "negative wait",
        "scenario:\n  batcher: {max_wait_ms: -1}\n",
        3,
        "scenario.batcher.max_wait_ms",
        "at least 0",
    ),
    (
        "empty buckets",
        "scenario:\n  batcher: {buckets: []}\n",
        3,
        "scenario.batcher.buckets",
        "non-empty list",
    ),
    (
        "zero bucket",
        "scenario:\n  batcher: {buckets: [0, 8]}\n",
        3,
        "scenario.batcher.buckets[0]",
        "at least 1",
    ),
    (
        "unsorted buckets",
        "scenario:\n  batcher:\n    buckets: [8, 1]\n",
        4,
        "scenario.batcher.buckets",
        "must be increasing",
    ),
    ("accuracy not bool", "scenario:\n  accuracy: yes please\n", 3, "scenario.accuracy", "true or false"),
    (
        "too many per query",
        "scenario:\n  performance_sample_count: 4\n  multistream:\n    samples_per_query: 8\n",
        5,
        "scenario.multistream.samples_per_query",
        "more than performance_sample_count=4",
    ),
    (
        "peak bracket",
        "scenario:\n  server:\n    peak:\n      min_qps: 50\n      max_qps: 10\n",
        5,
        "scenario.server.peak.min_qps",
        "must be below max_qps=10",
    ),
    ("unknown scenario value", "", 2, "axes.scenario[0]", "unknown scenario 'Server'; choose one of: none, "),
]


@pytest.mark.parametrize("name, text, line, field, words", BAD, ids=[b[0] for b in BAD])
def test_bad_section_is_one_clear_line(tmp_path, name, text, line, field, words):
    axes = AXES
    if name == "unknown scenario value":
        axes = AXES.replace("phase: [prefill]}", "phase: [prefill],\n       scenario: [Server]}")
    with pytest.raises(MatrixError) as info:
        load(tmp_path, text, axes=axes)
    err, message = info.value, str(info.value)
    assert "\n" not in message and words in message, message
    assert (err.line, err.field) == (line, field), message
    assert message.startswith(f"{tmp_path / 'm.yaml'}:{line}: {field}: ")


@pytest.mark.parametrize("name", ["loadgen.yaml", "loadgen-h100.yaml", "smoke.yaml"])
def test_shipped_scenario_matrices_load(name):
    from genrec_bench.bench.plan import known

    path = Path(__file__).resolve().parents[2] / "matrices" / name
    matrix = load_matrix(str(path), known())
    scenario_cells = [cell for cell, reason in matrix.cells(known()) if cell.scenario and reason is None]
    assert scenario_cells and all(cell.id.endswith(f"-{cell.scenario}") for cell in scenario_cells)
    assert "scenario" in matrix.sections
