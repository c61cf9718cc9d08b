"""perf_analyzer cross-check: its command line, its CSV, its input data, and why it cannot run here."""

import json
import platform

import numpy as np

from genrec_bench.backends.triton_server import perf_analyzer as pa
from genrec_bench.matrices.serving import PerfAnalyzerSpec

CSV = """\
Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,\
Avg latency
4,2105.5,12,300,150,20,1200,30,5,1850,2300,2500,3100,1900
"""


def test_command_line():
    cmd = pa.command(
        "/x/perf_analyzer",
        protocol="grpc",
        url="127.0.0.1:8001",
        model="m",
        concurrency=5,
        batch=1,
        data_path="d.json",
        csv_path="o.csv",
        interval_ms=2000,
        stability=15.0,
        max_trials=4,
    )
    text = " ".join(cmd)
    assert cmd[0] == "/x/perf_analyzer" and "--help" not in cmd
    # One level per run: start:end with start == end (start:end:step would be an arithmetic range).
    assert "--concurrency-range 5:5" in text and "-i grpc" in text and "-u 127.0.0.1:8001" in text
    assert "--input-data d.json" in text and "-f o.csv" in text and "-b 1" in text
    assert "--measurement-interval 2000" in text and "-s 15.0" in text and "--max-trials 4" in text


def test_csv_rows_in_milliseconds():
    (row,) = pa.parse_csv(CSV)
    assert row["concurrency"] == 4 and row["requests_per_s"] == 2105.5
    assert row["latency_ms"] == {"p50": 1.85, "p90": 2.3, "p95": 2.5, "p99": 3.1, "mean": 1.9}
    assert row["server"] == {
        "queue_us": 150.0,
        "compute_input_us": 20.0,
        "compute_infer_us": 1200.0,
        "compute_output_us": 30.0,
    }


def test_input_data_holds_real_ids_per_row():
    arrays = {"HISTORY": np.array([[5, 6, 0], [7, 0, 0]], dtype=np.int64)}
    doc = pa.input_data(arrays)
    assert doc == {
        "data": [
            {"HISTORY": {"content": [5, 6, 0], "shape": [3]}},
            {"HISTORY": {"content": [7, 0, 0], "shape": [3]}},
        ]
    }
    json.dumps(doc)


def test_missing_binary_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(pa.BINARY_ENV, raising=False)
    monkeypatch.setattr(pa.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(pa.sys, "executable", str(tmp_path / "python"))
    binary, why = pa.locate()
    assert binary is None
    assert "not installed" in why and "0.1.0 is an empty placeholder" in why
    assert f"glibc {platform.libc_ver()[1]}" in why


def test_a_binary_too_new_for_this_glibc_says_so(monkeypatch, tmp_path):
    fake = tmp_path / "perf_analyzer"
    fake.write_text(
        '#!/bin/sh\necho "$0: /lib/x86_64-linux-gnu/libc.so.6: version \\`GLIBC_2.38\' not found" >&2\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv(pa.BINARY_ENV, str(fake))
    binary, why = pa.locate()
    assert binary is None and "needs a newer glibc" in why and "GLIBC_2.38" in why


def test_cross_check_records_each_level(monkeypatch, tmp_path):
    # A stand-in binary that writes perf_analyzer's CSV where -f says, and fails at concurrency 3.
    fake = tmp_path / "pa.sh"
    fake.write_text(
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -f) out=$2;; --concurrency-range) c=$2;; esac; "
        "shift; done\nif [ \"$c\" = 3:3 ]; then echo 'Failed to obtain stable measurement' >&2; exit 2; "
        f"fi\nprintf '%s' '{CSV}' > $out\n"
    )
    fake.chmod(0o755)
    result = pa.cross_check(
        str(fake),
        protocol="grpc",
        url="u",
        model="m",
        batch=1,
        arrays={"HISTORY": np.ones((1, 4), dtype=np.int64)},
        levels=(4, 3),
        workdir=tmp_path,
        spec=PerfAnalyzerSpec(measurement_interval_ms=100, max_trials=1),
    )
    ok, failed = result["levels"]
    assert ok["ok"] and ok["requests_per_s"] == 2105.5
    assert not failed["ok"] and "exit 2" in failed["reason"] and "stable measurement" in failed["reason"]
    assert json.loads((tmp_path / "perf_analyzer_input.json").read_text())["data"][0]["HISTORY"]["shape"] == [
        4
    ]
