"""The matrix's `serving:` section: defaults, a full section, and one MatrixError naming file, line and field
for every kind of mistake."""

import textwrap

import pytest

from genrec_bench.matrices import Known, MatrixError, load_matrix
from genrec_bench.matrices.serving import PoissonSpec, ServingSpec, SweepSpec, serving_spec

KNOWN = Known(backends={"triton-grpc": ("latency", "sweep")}, models=("tiny",))
AXES = """\
axes: {model: [tiny], backend: [triton-grpc], mode: [latency], precision: [fp32], batch: [1], seq_len: [8],
       phase: [prefill]}
"""


def load(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(AXES + textwrap.dedent(text))
    return load_matrix(str(path), KNOWN)


def test_no_section_gives_the_defaults(tmp_path):
    matrix = load(tmp_path, "")
    assert "serving" not in matrix.sections
    assert serving_spec(matrix) == ServingSpec()


def test_a_full_section(tmp_path):
    matrix = load(
        tmp_path,
        """\
        serving:
          target: genrec
          max_batch_size: 32
          preferred_batch_sizes: [8, 16]
          max_queue_delay_us: 0
          instances: 2
          instance_kind: cpu
          preselect: 3
          sweep: {concurrency: [1, 8], warmup_s: 0, measure_s: 0.5, clients: 2}
          poisson: {rates: [10, 20.5], duration_s: 1, seed: 7}
        """,
    )
    spec = serving_spec(matrix)
    assert spec.target == "genrec" and spec.max_batch_size == 32 and spec.preferred_batch_sizes == (8, 16)
    assert spec.instances == 2 and spec.instance_kind == "cpu" and spec.preselect == 3
    assert spec.sweep == SweepSpec(concurrency=(1, 8), warmup_s=0.0, measure_s=0.5, clients=2)
    assert spec.poisson == PoissonSpec(rates=(10.0, 20.5), duration_s=1.0, seed=7)
    assert spec.perf_analyzer.max_trials == 6  # untouched nested sections keep their defaults


BAD = [
    ("not a mapping", "serving: [1]\n", 3, "serving", "must be a mapping"),
    ("unknown key", "serving:\n  max_batch: 8\n", 4, "serving.max_batch", "unknown key; expected one of"),
    ("wrong type", "serving:\n  max_batch_size: '8'\n", 4, "serving.max_batch_size", "must be an integer"),
    ("bool", "serving:\n  instances: true\n", 4, "serving.instances", "must be an integer"),
    ("zero", "serving:\n  max_batch_size: 0\n", 4, "serving.max_batch_size", "at least 1"),
    (
        "unknown target",
        "serving:\n  target: cluster\n",
        4,
        "serving.target",
        "choose one of: ensemble, genrec",
    ),
    ("unknown kind", "serving:\n  instance_kind: tpu\n", 4, "serving.instance_kind", "choose one of"),
    (
        "preferred too big",
        "serving:\n  max_batch_size: 8\n  preferred_batch_sizes: [4, 16]\n",
        5,
        "serving.preferred_batch_sizes",
        "16 is larger than max_batch_size=8",
    ),
    (
        "nested unknown",
        "serving:\n  sweep: {concurency: [1]}\n",
        4,
        "serving.sweep.concurency",
        "unknown key",
    ),
    (
        "empty list",
        "serving:\n  sweep: {concurrency: []}\n",
        4,
        "serving.sweep.concurrency",
        "non-empty list",
    ),
    (
        "list item",
        "serving:\n  sweep:\n    concurrency: [1, 0]\n",
        5,
        "serving.sweep.concurrency[1]",
        "at least 1",
    ),
    (
        "duplicate level",
        "serving:\n  sweep: {concurrency: [2, 2]}\n",
        4,
        "serving.sweep.concurrency",
        "lists a value twice",
    ),
    ("zero window", "serving:\n  sweep: {measure_s: 0}\n", 4, "serving.sweep.measure_s", "greater than 0"),
    ("zero rate", "serving:\n  poisson: {rates: [0]}\n", 4, "serving.poisson.rates[0]", "greater than 0"),
    ("nested not mapping", "serving:\n  poisson: 5\n", 4, "serving.poisson", "must be a mapping"),
]


@pytest.mark.parametrize("name,text,line,field,words", BAD, ids=[b[0] for b in BAD])
def test_mistakes_name_file_line_and_field(tmp_path, name, text, line, field, words):
    with pytest.raises(MatrixError) as info:
        load(tmp_path, text)
    err = info.value
    assert (err.line, err.field) == (line, field), str(err)
    assert words in err.message
    assert str(err).startswith(f"{tmp_path / 'm.yaml'}:{line}: {field}: ")


def test_the_repository_key_ignores_the_load_settings():
    a = ServingSpec(sweep=SweepSpec(concurrency=(1,)))
    b = ServingSpec(sweep=SweepSpec(concurrency=(1, 2, 4)), poisson=PoissonSpec(rates=(5.0,)))
    assert a.repository_key() == b.repository_key()
    assert a.repository_key() != ServingSpec(max_queue_delay_us=7).repository_key()


def test_the_shipped_serving_matrices_load():
    from pathlib import Path

    from genrec_bench.backends import backend_modes
    from genrec_bench.models import presets

    known = Known(backends=backend_modes(), models=tuple(presets()))
    root = Path(__file__).resolve().parents[2] / "matrices"
    for name in ("serving.yaml", "serving-h100-genrec.yaml", "serving-h100-ensemble.yaml"):
        matrix = load_matrix(str(root / name), known)
        assert isinstance(matrix.sections["serving"], ServingSpec)
        assert matrix.cells(known)


def test_cuda_graphs_is_a_boolean(tmp_path):
    assert serving_spec(load(tmp_path, "serving: {cuda_graphs: false}\n")).cuda_graphs is False
    with pytest.raises(MatrixError, match="serving.cuda_graphs: must be true or false, got 'yes'"):
        load(tmp_path, "serving: {cuda_graphs: 'yes'}\n")
