"""LoadGen for real with a stand-in SUT (no model): what its logs say reaches the record as LoadGen said it,
the accuracy log carries each sample's answer, and a SUT whose calls fail fails the run with the first
error."""

import queue
import threading

import numpy as np
import pytest

from genrec_bench.bench.loadgen import logs
from genrec_bench.bench.loadgen.completion import Completions, decode, encode
from genrec_bench.bench.loadgen.runner import LoadGenSession
from genrec_bench.matrices.errors import BackendError

lg = pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed (the `loadgen` extra)")
K = 3


class EchoSUT:
    """Answers sample i with items [i, i+1, i+2] after `delay_s`, from one long-lived thread."""

    kind = "fake"

    def __init__(self, delay_s=0.0005, fail=False):
        self.delay_s, self.fail = delay_s, fail

    def start(self, lg, *, accuracy, wait):
        self.completions, self.jobs = Completions(lg, accuracy), queue.Queue()
        self.thread = threading.Thread(target=self._work)
        self.thread.start()

    def issue(self, samples):
        self.jobs.put([(s.id, s.index) for s in samples])

    def flush(self):
        pass

    def stop(self):
        self.jobs.put(None)
        self.thread.join()

    def _work(self):
        while (job := self.jobs.get()) is not None:
            threading.Event().wait(self.delay_s)
            ids, indices = [j[0] for j in job], [j[1] for j in job]
            issued = [0] * len(ids)
            if self.fail:
                self.completions.fail(ids, issued, "RuntimeError: planted failure 4711")
                continue
            items = np.array([[i, i + 1, i + 2] for i in indices])
            self.completions.complete(ids, issued, -items.astype(np.float32), items)


def run(tmp_path, asked, *, accuracy=False, sut=None, count=16):
    loadgen = LoadGenSession(lg, sut or EchoSUT(), count)
    try:
        done = loadgen.run(asked, tmp_path, accuracy=accuracy, scenario=asked["scenario"].lower())
    finally:
        loadgen.close()
    return done


BASE = {"min_query_count": 1, "performance_sample_count": 16, "seed": 0}


def test_response_bytes_round_trip():
    items, scores = (
        np.array([[5, 7, 9], [1, 2, 3]]),
        np.array([[0.5, 0.25, -1.0], [3, 2, 1]], dtype=np.float32),
    )
    rows = encode(scores, items)
    assert rows.shape == (2, 12 * K)
    got_scores, got_items = decode(rows[1].tobytes())
    assert got_items.tolist() == [1, 2, 3] and got_scores.tolist() == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="not k int64 items followed by k float32 scores"):
        decode(b"\x00" * 13)


def test_a_valid_server_run_reads_as_loadgen_wrote_it(tmp_path):
    asked = BASE | {
        "scenario": "Server",
        "min_duration_ms": 300,
        "min_query_count": 64,
        "target_qps": 200,
        "latency_bound_ms": 50,
        "percentile": 0.9,
    }
    done = run(tmp_path, asked)
    result = logs.result("server", tmp_path)
    assert result["validity"] == "VALID" and result["valid"] and result["reasons"] == []
    assert result["constraints"] == {
        "perf_constraints_met": True,
        "min_duration_met": True,
        "min_queries_met": True,
        "early_stopping_met": True,
    }
    assert (
        result["target"]["qps"] == 200
        and result["target"]["latency_ms"] == 50
        and result["target"]["percentile"] == 0.9
    )
    assert result["query_count"] == len(done.latencies_ns) >= 64
    assert 100 < result["samples_per_s"] < 300 and result["scheduled_samples_per_s"] > 0
    lat = result["latency_ms"]
    assert 0.4 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["loadgen_version"].startswith("6.")
    summary = (tmp_path / logs.SUMMARY).read_text()
    assert "Result is : VALID" in summary and f"{result['samples_per_s']:.2f}" in summary


def test_an_invalid_offline_run_says_why(tmp_path):
    # Expecting 10 samples/s of a system that does thousands: the one query ends long before min_duration.
    asked = BASE | {"scenario": "Offline", "min_duration_ms": 2000, "expected_qps": 10}
    run(tmp_path, asked)
    result = logs.result("offline", tmp_path)
    assert result["validity"] == "INVALID" and not result["valid"]
    assert "min duration not met" in result["reasons"]
    assert any("Increase expected QPS" in r for r in result["reasons"] + result["recommendations"])
    assert result["query_count"] == 1 and result["samples_per_s"] > 100


def test_the_accuracy_log_holds_every_samples_answer(tmp_path):
    run(tmp_path, BASE | {"scenario": "Offline", "min_duration_ms": 100, "expected_qps": 100}, accuracy=True)
    entries = logs.accuracy_entries(tmp_path)
    assert sorted(e["qsl_idx"] for e in entries) == list(range(16))
    for entry in entries:
        scores, items = decode(bytes.fromhex(entry["data"]))
        i = entry["qsl_idx"]
        assert items.tolist() == [i, i + 1, i + 2] and scores.tolist() == [-i, -i - 1, -i - 2]


def test_failed_calls_fail_the_run_with_the_first_error(tmp_path):
    with pytest.raises(
        BackendError,
        match=r"loadgen \| \d+ call\(s\) of the performance run failed, first: "
        r"RuntimeError: planted failure 4711",
    ):
        run(
            tmp_path,
            BASE
            | {
                "scenario": "SingleStream",
                "min_duration_ms": 100,
                "expected_latency_ms": 1,
                "percentile": 0.9,
            },
            sut=EchoSUT(fail=True),
        )


def test_a_log_without_a_result_is_one_clear_error(tmp_path):
    (tmp_path / logs.DETAIL).write_text(
        ':::MLLOG {"key": "error_runtime", "value": "boom", "metadata": {"is_error": true}}\n'
    )
    (tmp_path / logs.SUMMARY).write_text("")
    with pytest.raises(
        BackendError, match="has no result_validity: the run did not finish; errors: error_runtime: boom"
    ):
        logs.result("server", tmp_path)
