"""The server's own account, parsed: statistics extension deltas and Prometheus text."""

import pytest

from genrec_bench.backends.triton_server.metrics import (
    achieved_batch,
    parse_model_stats,
    parse_prometheus,
    stats_delta,
)
from genrec_bench.bench.serving.scenarios import split
from genrec_bench.bench.stats import latency_summary as summarize

PROM = """\
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="m_genrec",version="1"} 120
nv_inference_count{model="m_pre",version="1"} 40
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="m_genrec",version="1"} 30
nv_gpu_utilization{gpu_uuid="GPU-1"} 0.5
nv_cache_num_hits_per_model{model="a \\"quoted\\" name",version="1"} 0
"""


def test_prometheus_text():
    samples = parse_prometheus(PROM)
    assert samples[("nv_inference_count", (("model", "m_genrec"), ("version", "1")))] == 120
    assert samples[("nv_gpu_utilization", (("gpu_uuid", "GPU-1"),))] == 0.5
    assert len(samples) == 5
    with pytest.raises(ValueError, match="not a Prometheus exposition"):
        parse_prometheus("{broken} 1\n")


def test_achieved_batch_is_the_ratio_of_the_deltas():
    before = parse_prometheus(PROM)
    after = parse_prometheus(PROM.replace("} 120", "} 520").replace('"1"} 30', '"1"} 55'))
    assert achieved_batch(before, after, "m_genrec") == {
        "nv_inference_count": 400,
        "nv_inference_exec_count": 25,
        "batch": 16.0,
    }
    assert achieved_batch(before, before, "m_genrec")["batch"] is None


def _stats(count, infer_count, exec_count, ns):
    return {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "inference_count": infer_count,
                "execution_count": exec_count,
                "inference_stats": {
                    "success": {"count": count, "ns": 4 * ns},
                    "queue": {"count": count, "ns": ns},
                    "compute_input": {"count": count, "ns": ns // 10},
                    "compute_infer": {"count": count, "ns": 2 * ns},
                    "compute_output": {"count": count, "ns": ns // 5},
                },
            }
        ]
    }


def test_statistics_split_per_request():
    before = {"m": parse_model_stats(_stats(10, 10, 10, 1_000_000), "m")}
    after = {"m": parse_model_stats(_stats(110, 410, 35, 101_000_000), "m")}
    d = stats_delta(before, after)["m"]
    assert d["requests"] == 100 and d["executions"] == 25 and d["mean_batch"] == 16.0
    assert d["queue_us"] == pytest.approx(1000.0) and d["compute_infer_us"] == pytest.approx(2000.0)
    assert d["compute_input_us"] == pytest.approx(100.0) and d["compute_output_us"] == pytest.approx(200.0)
    assert d["request_us"] == pytest.approx(4000.0)
    with pytest.raises(ValueError, match="no entry for model 'x'"):
        parse_model_stats(_stats(1, 1, 1, 1), "x")


def test_split_and_summarize():
    assert split(8, 3) == [3, 3, 2] and split(2, 8) == [1, 1] and split(1, 1) == [1]
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s["p50"], s["n"], s["min"], s["max"]) == (3.0, 5, 1.0, 5.0)
    assert s["p90"] == pytest.approx(4.6)
    assert summarize([])["n"] == 0
