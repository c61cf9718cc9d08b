"""`--history DIR`: the run that --benchmark-json writes goes into the history store after the session."""

import json

import pytest

MATRIX = """\
name: history-test
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [2], seq_len: [16], phase: [prefill]}
timing: {warmup_rounds: 1, rounds: 3, min_rounds: 2, max_time_s: 0.2}
"""


def test_the_run_is_added_to_the_history(bench_dir):
    matrix = bench_dir.makefile(".yaml", m=MATRIX)
    store, out = bench_dir.path / "history", bench_dir.path / "out.json"
    result = bench_dir.runpytest(
        "--matrix", str(matrix), "--benchmark-json", str(out), "--history", str(store)
    )
    assert result.ret == pytest.ExitCode.OK
    entries = list(store.glob("*/*.json"))
    assert len(entries) == 1
    result.stdout.fnmatch_lines([f"genrec-bench: run added to the history: {entries[0]}"])
    entry = json.loads(entries[0].read_text())
    assert [c["record"]["cell"]["id"] for c in entry["cells"]] == ["tiny-torch-cpu-fp32-b2-s16-prefill"]
    assert entry["hardware"]["cpu_model"] and entry["software"]["torch"]


def test_history_without_a_results_file_says_what_to_do(bench_dir):
    result = bench_dir.runpytest("--history", str(bench_dir.path / "h"), "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: --history DIR stores the run that --benchmark-json writes: add --benchmark-json PATH "
        "(or add a file later: python -m reports history add)"
    ]
