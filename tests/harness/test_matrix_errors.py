"""Every kind of bad matrix file gives one MatrixError line naming file, line and field."""

from pathlib import Path

import pytest

from genrec_bench.matrices import Known, MatrixError, load_matrix

ROOT = Path(__file__).resolve().parents[2]
KNOWN = Known(
    backends={"torch-cpu": ("eager", "compile"), "torch-cuda": ("eager", "compile", "cudagraph")},
    models=("tiny", "small"),
    kernels=("torch", "triton"),
)
GOOD_AXES = """\
axes:
  model: [tiny]
  backend: [torch-cpu]
  precision: [fp32]
  batch: [1, 8]
  seq_len: [32]
  phase: [prefill]
"""

# (name, file text, expected line, expected field, words the message must contain)
BAD = [
    ("empty file", "", None, "file", "is empty"),
    ("not yaml", "axes: [1, 2\n", 2, "yaml", "not valid YAML"),
    ("top level list", "- 1\n- 2\n", 1, "matrix", "must be a mapping"),
    ("no axes", "name: x\n", 1, "axes", "missing"),
    ("unknown top key", GOOD_AXES + "timeing: {rounds: 3}\n", 8, "timeing", "unknown key"),
    ("duplicate top key", GOOD_AXES + "name: a\nname: b\n", 9, "name", "duplicate key (first at line 8)"),
    ("duplicate axis", GOOD_AXES + "  batch: [2]\n", 8, "batch", "duplicate key (first at line 5)"),
    ("unknown axis", GOOD_AXES + "  batchsize: [2]\n", 8, "axes.batchsize", "unknown key"),
    ("missing axis", GOOD_AXES.replace("  phase: [prefill]\n", ""), 2, "axes.phase", "missing"),
    ("axis not a list", GOOD_AXES.replace("batch: [1, 8]", "batch: 8"), 5, "axes.batch", "must be a list"),
    ("empty axis", GOOD_AXES.replace("batch: [1, 8]", "batch: []"), 5, "axes.batch", "is empty"),
    (
        "zero batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1, 0]"),
        5,
        "axes.batch[1]",
        "positive integer",
    ),
    (
        "negative seq",
        GOOD_AXES.replace("seq_len: [32]", "seq_len: [-32]"),
        6,
        "axes.seq_len[0]",
        "positive integer",
    ),
    (
        "string batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1, '8']"),
        5,
        "axes.batch[1]",
        "positive integer",
    ),
    (
        "float batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1.5]"),
        5,
        "axes.batch[0]",
        "positive integer",
    ),
    (
        "bool batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [true]"),
        5,
        "axes.batch[0]",
        "positive integer",
    ),
    (
        "repeated value",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [8, 8]"),
        5,
        "axes.batch[1]",
        "listed twice",
    ),
    (
        "unknown backend",
        GOOD_AXES.replace("[torch-cpu]", "[torch-gpu]"),
        3,
        "axes.backend[0]",
        "unknown backend 'torch-gpu'; choose one of: torch-cpu, torch-cuda",
    ),
    (
        "unknown precision",
        GOOD_AXES.replace("[fp32]", "[fp8]"),
        4,
        "axes.precision[0]",
        "unknown precision 'fp8'",
    ),
    ("unknown phase", GOOD_AXES.replace("[prefill]", "[train]"), 7, "axes.phase[0]", "unknown phase"),
    ("unknown model", GOOD_AXES.replace("[tiny]", "[huge]"), 2, "axes.model[0]", "unknown model 'huge'"),
    ("unknown mode", GOOD_AXES + "  mode: [jit]\n", 8, "axes.mode[0]", "unknown mode 'jit'"),
    ("unknown kernel", GOOD_AXES + "  kernel: [cuda]\n", 8, "axes.kernel[0]", "unknown kernel 'cuda'"),
    ("numeric precision", GOOD_AXES.replace("[fp32]", "[16]"), 4, "axes.precision[0]", "must be a string"),
    (
        "rule without reason",
        GOOD_AXES + "exclude:\n  - {batch: 8}\n",
        9,
        "exclude[0].reason",
        "needs a non-empty",
    ),
    (
        "rule empty reason",
        GOOD_AXES + "exclude:\n  - {batch: 8, reason: ' '}\n",
        9,
        "exclude[0].reason",
        "non-empty",
    ),
    (
        "rule unknown key",
        GOOD_AXES + "include:\n  - {bach: 8, reason: x}\n",
        9,
        "include[0].bach",
        "unknown key",
    ),
    (
        "rule bad value",
        GOOD_AXES + "include:\n  - {batch: -1, reason: x}\n",
        9,
        "include[0].batch",
        "positive integer",
    ),
    ("rule names no axis", GOOD_AXES + "exclude:\n  - {reason: x}\n", 9, "exclude[0]", "names no axis"),
    ("rules not a list", GOOD_AXES + "exclude: {batch: 8}\n", 8, "exclude", "must be a list"),
    ("timing not mapping", GOOD_AXES + "timing: 5\n", 8, "timing", "must be a mapping"),
    ("timing unknown key", GOOD_AXES + "timing:\n  round: 3\n", 9, "timing.round", "unknown key"),
    ("timing zero rounds", GOOD_AXES + "timing:\n  rounds: 0\n", 9, "timing.rounds", "at least 1"),
    ("timing float rounds", GOOD_AXES + "timing:\n  rounds: 2.5\n", 9, "timing.rounds", "must be an integer"),
    ("timing zero time", GOOD_AXES + "timing:\n  max_time_s: 0\n", 9, "timing.max_time_s", "greater than 0"),
    (
        "min over rounds",
        GOOD_AXES + "timing:\n  rounds: 3\n  min_rounds: 5\n",
        9,
        "timing.min_rounds",
        "min_rounds=5 is larger than rounds=3",
    ),
    (
        "tolerance bad precision",
        GOOD_AXES + "tolerance:\n  fp64: {max_rel_err: 1}\n",
        9,
        "tolerance.fp64",
        "unknown precision",
    ),
    (
        "tolerance negative",
        GOOD_AXES + "tolerance:\n  fp16: {max_rel_err: -1}\n",
        9,
        "tolerance.fp16.max_rel_err",
        "at least 0",
    ),
    (
        "agreement over one",
        GOOD_AXES + "tolerance:\n  fp16: {topk_agreement: 1.5}\n",
        9,
        "tolerance.fp16.topk_agreement",
        "between 0 and 1",
    ),
    ("name not string", "name: [a]\n" + GOOD_AXES, 1, "name", "must be a string"),
    # YAML the loader refuses before anything is expanded
    (
        "billion laughs",
        'a: &a ["lol", "lol"]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n' + GOOD_AXES,
        1,
        "b[0]",
        "anchors and aliases",
    ),
    ("recursive alias", "a: &a [*a]\n" + GOOD_AXES, 1, "a[0]", "anchors and aliases"),
    ("deep nesting", "a: " + "[" * 20_000 + "]" * 20_000 + "\n" + GOOD_AXES, None, "yaml", "nested deeper"),
    (
        "moderately deep",
        "a: " + "[" * 40 + "]" * 40 + "\n" + GOOD_AXES,
        1,
        "a" + "[0]" * 32,
        "nested deeper than 32",
    ),
    ("merge key", GOOD_AXES + "timing:\n  <<: {rounds: 3}\n", 9, "timing", "merge keys (<<)"),
    ("custom tag", GOOD_AXES + "name: !env HOME\n", 8, "name", "tag '!env' is not supported"),
    (
        "int tag on text",
        GOOD_AXES + 'timing: {rounds: !!int "eight"}\n',
        8,
        "timing.rounds",
        "not a plain decimal integer",
    ),
    # YAML 1.1 numbers that are not what they look like
    (
        "octal seq_len",
        GOOD_AXES.replace("seq_len: [32]", "seq_len: [032]"),
        6,
        "axes.seq_len[0]",
        "'032' is not a plain decimal integer",
    ),
    (
        "sexagesimal batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1:00]"),
        5,
        "axes.batch[0]",
        "'1:00' is not a plain decimal integer",
    ),
    ("yes as a word", GOOD_AXES + "description: yes\n", 8, "description", "reads as a boolean"),
    # values that pass a type check but would break the run
    (
        "nan tolerance",
        GOOD_AXES + "tolerance:\n  fp32: {max_rel_err: .nan}\n",
        9,
        "tolerance.fp32.max_rel_err",
        "not a finite decimal number",
    ),
    (
        "inf time",
        GOOD_AXES + "timing: {max_time_s: .inf}\n",
        8,
        "timing.max_time_s",
        "not a finite decimal number",
    ),
    (
        "nan time",
        GOOD_AXES + "timing: {max_time_s: .nan}\n",
        8,
        "timing.max_time_s",
        "not a finite decimal number",
    ),
    (
        "exponent read as text",
        GOOD_AXES + "tolerance:\n  fp32: {max_rel_err: 2e-5}\n",
        9,
        "tolerance.fp32.max_rel_err",
        "got '2e-5' (YAML 1.1 reads a number as one only with a dot and a signed exponent); write 2.0e-5",
    ),
    (
        "exponent batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1e9]"),
        5,
        "axes.batch[0]",
        "must be a positive integer, got '1e9'",
    ),
    (
        "huge warm-up",
        GOOD_AXES + "timing: {warmup_rounds: 100000000000}\n",
        8,
        "timing.warmup_rounds",
        "100,000,000,000 is more than the 10,000 allowed",
    ),
    (
        "float warm-up",
        GOOD_AXES + "timing: {warmup_rounds: 1e11}\n",
        8,
        "timing.warmup_rounds",
        "must be an integer, got '1e11'; write it out in decimal digits",
    ),
    ("zero timeout", GOOD_AXES + "timing: {timeout_s: 0}\n", 8, "timing.timeout_s", "greater than 0"),
    (
        "huge batch",
        GOOD_AXES.replace("batch: [1, 8]", "batch: [1000000000]"),
        5,
        "axes.batch[0]",
        "more than the 65,536 a cell may ask for",
    ),
    (
        "nine million cells",
        GOOD_AXES.replace("batch: [1, 8]", f"batch: [{', '.join(map(str, range(1, 3001)))}]").replace(
            "seq_len: [32]", f"seq_len: [{', '.join(map(str, range(1, 3001)))}]"
        ),
        1,
        "axes",
        "make up to 9,000,000 cells, more than 100,000",
    ),
    ("no cells", GOOD_AXES + "  mode: [cudagraph]\n", 1, "axes", "give no cell"),
    ("unknown isolation", GOOD_AXES + "isolation: thread\n", 8, "isolation", "unknown isolation 'thread'"),
    (
        "per-phase unknown limit",
        GOOD_AXES + "tolerance:\n  fp16: {rank: {max_rel: 1}}\n",
        9,
        "tolerance.fp16.rank.max_rel",
        "unknown key",
    ),
]


@pytest.mark.parametrize("name, text, line, field, words", BAD, ids=[b[0] for b in BAD])
def test_bad_matrix_is_one_clear_line(tmp_path, name, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MatrixError) as info:
        load_matrix(str(path), KNOWN)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert (err.line, err.field) == (line, field), message
    assert words in message
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert message.startswith(where + field + ": "), message


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(MatrixError, match="not found; pass --matrix"):
        load_matrix(str(tmp_path / "nope.yaml"), KNOWN)


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "is a directory"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "is not UTF-8 text"),
        ("name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        (b"# " + b"x" * (2 << 20) + b"\n", "is larger than 1024 KiB"),
    ],
)
def test_files_that_are_not_matrices_are_one_line(tmp_path, content, words):
    path = tmp_path / "m.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(MatrixError, match=words):
        load_matrix(str(path), KNOWN)


def test_rules_that_do_nothing_are_warnings():
    import tempfile

    text = GOOD_AXES + (
        "exclude:\n  - {batch: 64, reason: no such batch}\n"
        "include:\n  - {batch: 8, reason: already there}\n  - {batch: 2, reason: adds cells}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(text)
        handle.flush()
        matrix = load_matrix(handle.name, KNOWN)
    assert [w.split(": ", 1)[1] for w in matrix.warnings] == [
        "exclude[0] matches no cell of the axes; it does nothing",
        "include[0] adds no cell the axes do not already have",
    ]
