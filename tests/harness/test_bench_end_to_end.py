"""The bench for real on CPU: every record validates against the schema, the summary reads it, and a cell that
fails the oracle still leaves its numbers in the JSON."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from genrec_bench.bench.record import schema
from genrec_bench.reports.__main__ import main as reports_main

ROOT = Path(__file__).resolve().parents[2]
MATRIX = """\
name: e2e
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32, bf16], batch: [2], seq_len: [16],
       phase: [prefill, decode, rank]}
timing: {warmup_rounds: 1, rounds: 5, min_rounds: 3, max_time_s: 0.2}
"""


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, run_bench):
    tmp_path = tmp_path_factory.mktemp("e2e")
    proc, doc = run_bench(tmp_path, MATRIX)
    return tmp_path, proc, doc


def test_records_validate_and_summarize(bench_run, capsys):
    tmp_path, proc, doc = bench_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(doc["benchmarks"]) == 6
    for bench in doc["benchmarks"]:
        record = bench["extra_info"]
        jsonschema.validate(record, schema())
        assert bench["name"] == f"test_cell[{record['cell']['id']}]"
        assert record["numerics"]["passed"] is True
        assert record["timer"]["method"] == "host_clock"
        assert record["latency_ms"]["n"] == record["timer"]["rounds"] == bench["stats"]["rounds"]
        # One set of numbers: pytest-benchmark's stats are the cell's own samples (timer=sample_clock).
        latency, stats = record["latency_ms"], bench["stats"]
        assert stats["median"] * 1e3 == pytest.approx(latency["p50"], rel=1e-9)
        assert stats["min"] * 1e3 == pytest.approx(latency["min"], rel=1e-9)
        assert stats["max"] * 1e3 == pytest.approx(latency["max"], rel=1e-9)
        assert stats["mean"] * 1e3 == pytest.approx(latency["mean"], rel=1e-9)
        assert len(latency["samples"]) == latency["n"] and latency["samples_stored"] == "all"
        assert statistics.median(latency["samples"]) == pytest.approx(latency["p50"], rel=1e-12)
        assert bench["params"] == {"cell": record["cell"]["id"]}  # serialisable: --group-by param:cell works
        assert record["latency_ms"]["p50"] <= record["latency_ms"]["p99"]
        assert record["memory"]["host_peak_rss_mb"] > 0 and record["memory"]["device_used_peak_mb"] is None
        assert record["env"]["libraries"]["torch"]
    assert "genrec" in doc["machine_info"]
    assert reports_main(["summary", str(tmp_path / "out.json")]) == 0
    table = capsys.readouterr().out
    assert "tiny-torch-cpu-bf16-b2-s16-rank" in table and "6 cells on" in table


def test_pytest_benchmark_compares_two_runs_of_ours(bench_run, tmp_path, run_bench):
    """machine_info is the same for two runs on one machine, and pytest-benchmark's own compare and histogram
    read our files."""
    first_dir, _, first = bench_run
    proc, second = run_bench(tmp_path, MATRIX, "-k", "prefill")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert first["machine_info"] == second["machine_info"]
    compare = subprocess.run(
        [
            str(Path(sys.executable).with_name("pytest-benchmark")),
            "compare",
            "--group-by",
            "param:cell",
            "--histogram",
            str(tmp_path / "hist"),
            str(first_dir / "out.json"),
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compare.returncode == 0, compare.stdout[-2000:] + compare.stderr[-2000:]
    assert "tiny-torch-cpu-fp32-b2-s16-prefill" in compare.stdout
    assert list(tmp_path.glob("hist*.svg")), "no histogram written"


def test_pivot_tables_one_metric_by_axes(bench_run, capsys):
    tmp_path, _, _ = bench_run
    assert (
        reports_main(
            [
                "pivot",
                str(tmp_path / "out.json"),
                "--rows",
                "phase",
                "--cols",
                "precision",
                "--metric",
                "throughput",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| phase | fp32 | bf16 |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| prefill", "| decode", "| rank"]
    assert all(line.count("|") == 4 and "–" not in line for line in lines[2:])


def test_an_oracle_failure_fails_the_cell_but_keeps_its_numbers(tmp_path, run_bench):
    impossible = MATRIX + "tolerance: {bf16: {max_rel_err: 0.0}}\n"
    proc, doc = run_bench(tmp_path, impossible, "-k", "prefill")
    assert proc.returncode == 1
    assert "FAILED bench/test_cells.py::test_cell[tiny-torch-cpu-bf16-b2-s16-prefill]" in proc.stdout
    assert "outputs disagree with the fp32 reference: max_rel_err" in proc.stdout
    assert "Traceback" not in proc.stdout
    records = {b["extra_info"]["cell"]["id"]: b["extra_info"] for b in doc["benchmarks"]}
    assert records["tiny-torch-cpu-bf16-b2-s16-prefill"]["numerics"]["passed"] is False
    assert records["tiny-torch-cpu-bf16-b2-s16-prefill"]["latency_ms"]["n"] >= 3
    assert records["tiny-torch-cpu-fp32-b2-s16-prefill"]["numerics"]["passed"] is True


def test_reports_name_a_bad_record_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"benchmarks": [{"name": "x", "extra_info": {"cell": {}}}]}))
    assert reports_main(["summary", str(bad)]) == 4  # input error: nothing valid to report
    skipped, nothing = capsys.readouterr().err.strip().splitlines()
    assert skipped.startswith(f"reports: {bad}: benchmarks[0] x: extra_info/") and skipped.endswith(
        "(skipped)"
    )
    assert nothing == f"reports: {bad}: no valid cell records to report"
    assert reports_main(["summary", str(tmp_path / "missing.json")]) == 4
    assert "not found" in capsys.readouterr().err
