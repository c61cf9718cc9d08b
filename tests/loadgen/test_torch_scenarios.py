"""LoadGen scenarios through torch-cpu for real: the bench over matrices/loadgen.yaml (every scenario, records
valid against the schema, accuracy mode passing, logs kept next to the JSON), a planted wrong backend failing
accuracy mode with its performance numbers kept, one real Server peak search, and the skip without LoadGen."""

import importlib.util
import json
import statistics
import textwrap
from pathlib import Path

import jsonschema
import pytest
import torch

from genrec_bench.backends import register_backend, unregister_backend
from genrec_bench.backends.base import BucketRunner
from genrec_bench.backends.torch_backend import TorchCPU, TorchSession
from genrec_bench.bench.cell_runner import run_cell
from genrec_bench.bench.plan import plan
from genrec_bench.bench.record import schema
from genrec_bench.bench.timing import SAMPLE_CLOCK
from genrec_bench.matrices.errors import OracleMismatch

pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed (the `loadgen` extra)")
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("singlestream", "multistream", "server", "offline")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, bench_subprocess):
    tmp = tmp_path_factory.mktemp("loadgen-torch")
    out = tmp / "out.json"
    proc = bench_subprocess("matrices/loadgen.yaml", out, "--matrix-backends", "torch-cpu", timeout=400)
    doc = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
    return tmp, proc, {b["extra_info"]["cell"]["id"]: b for b in doc["benchmarks"]}


def test_every_scenario_through_torch_cpu(bench_run):
    tmp, proc, benches = bench_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert sorted(benches) == sorted(f"tiny-torch-cpu-fp32-b8-s32-prefill-{s}" for s in SCENARIOS)
    for cell_id, bench in benches.items():
        record, scenario = bench["extra_info"], bench["extra_info"]["scenario"]
        jsonschema.validate(record, schema())
        name = cell_id.rsplit("-", 1)[1]
        assert record["cell"]["scenario"] == scenario["name"] == name
        assert record["numerics"]["passed"] is True, record["numerics"]["message"]
        assert scenario["accuracy"]["passed"] is True and scenario["accuracy"]["samples_checked"] == 64
        result = scenario["result"]
        assert result["validity"] in ("VALID", "INVALID") and result["query_count"] >= 1
        assert record["throughput"]["sequences_per_s"] == result["samples_per_s"] > 0
        # Logs are kept next to the JSON, one folder per run, and the record says where.
        folder = tmp / "out.loadgen" / cell_id
        assert scenario["logs"] == {"kept": True, "dir": str(folder)}
        assert (Path(result["log_dir"]) / "mlperf_log_summary.txt").is_file()
        assert (folder / "accuracy" / "mlperf_log_accuracy.json").is_file()
        # One set of numbers: pytest-benchmark's stats are the SUT's per-sample latencies.
        latency = record["latency_ms"]
        assert bench["stats"]["rounds"] == latency["n"] == record["timer"]["rounds"]
        assert bench["stats"]["median"] * 1e3 == pytest.approx(latency["p50"], rel=1e-9)
        assert record["timer"]["method"] == "loadgen_sample"
        if (
            name != "offline"
        ):  # the SUT's clock starts after LoadGen's scheduled time and stops before its own
            assert 0.5 * result["latency_ms"]["p50"] <= latency["p50"] <= 1.02 * result["latency_ms"]["p50"]
    calls = {
        name: benches[f"tiny-torch-cpu-fp32-b8-s32-prefill-{name}"]["extra_info"]["scenario"]["sut"]
        for name in SCENARIOS
    }
    assert calls["singlestream"]["mean_users_per_call"] == 1.0
    assert calls["multistream"]["mean_users_per_call"] == 8.0  # a query of 8 samples is one bucket-8 call
    assert calls["offline"]["mean_users_per_call"] > 6  # one query of everything, cut into calls of 8
    assert calls["server"]["buckets"] == [1, 2, 4, 8] and calls["server"]["max_wait_ms"] == 1.0


class WrongSession(TorchSession):
    """Right on its per-call closure (the first-call oracle passes), wrong in its bucket runners for every
    user whose first item id is even: only the accuracy run over every sample can see it."""

    def bucket_runner(self, drawn):
        inner, loaded = super().bucket_runner(drawn), {}

        def load(new):
            loaded["ids"] = new["ids"]
            inner.load(new)

        def run():
            scores, items = inner.run()
            bad = loaded["ids"][:, 0] % 2 == 0
            return scores, torch.where(bad.unsqueeze(1), items.flip(1) % 1999 + 1, items)

        loaded["ids"] = drawn["ids"]
        return BucketRunner(load=load, run=run)


@pytest.fixture
def wrong_backend():
    class WrongTorch(TorchCPU):
        name = "wrong-torch-cpu"

        def prepare_impl(self, model, cell, context):
            return WrongSession(model, cell, "cpu")

    register_backend(WrongTorch)
    yield WrongTorch.name
    unregister_backend(WrongTorch.name)


def matrix(tmp_path, backend, scenario, extra=""):
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: in-process
        axes: {{model: [tiny], backend: [{backend}], precision: [fp32], batch: [8], seq_len: [32],
               phase: [prefill], scenario: [{scenario}]}}
        scenario:
          performance_sample_count: 48
          min_duration_ms: 400
        """)
        + textwrap.indent(textwrap.dedent(extra), "  ")
    )
    return path


@pytest.mark.benchmark(timer=SAMPLE_CLOCK)
def test_a_planted_wrong_backend_fails_accuracy_mode_and_keeps_its_numbers(
    benchmark, tmp_path, wrong_backend
):
    planned = plan(str(matrix(tmp_path, wrong_backend, "offline")))
    (only,) = planned.runnable
    with pytest.raises(OracleMismatch, match="outputs disagree with the fp32 reference: .*topk_agreement"):
        run_cell(benchmark, only, planned.context)
    record = benchmark.extra_info
    jsonschema.validate(record, schema())
    accuracy = record["scenario"]["accuracy"]
    assert accuracy["checked"] and accuracy["passed"] is False and accuracy["samples_checked"] == 48
    assert accuracy["numerics"]["topk_agreement"] < 0.5  # the worst user's answer is wrong
    assert 0.2 < accuracy["numerics"]["topk_agreement_mean"] < 0.9  # about half the users are wrong
    assert record["numerics"]["passed"] is False
    # The first call was right: only the accuracy run over every sample saw it.
    assert record["numerics"]["message"].startswith("LoadGen accuracy mode over every sample: ")
    assert "topk_agreement" in record["numerics"]["message"]
    assert record["scenario"]["result"]["samples_per_s"] > 0 and record["latency_ms"]["n"] > 0
    assert (
        record["scenario"]["logs"]["kept"] is False and not Path(record["scenario"]["logs"]["dir"]).exists()
    )


@pytest.mark.benchmark(timer=SAMPLE_CLOCK)
def test_a_real_server_peak_search_on_cpu(benchmark, tmp_path):
    path = matrix(
        tmp_path,
        "torch-cpu",
        "server",
        """\
        accuracy: false
        server: {latency_bound_ms: 30, percentile: 0.9, min_query_count: 32,
                 peak: {enabled: true, max_probes: 3, tolerance: 0.25, min_qps: 20, max_qps: 100000}}
        """,
    )
    planned = plan(str(path), results_path=str(tmp_path / "out.json"))
    (only,) = planned.runnable
    record = run_cell(benchmark, only, planned.context)
    jsonschema.validate(record, schema())
    peak = record["scenario"]["peak"]
    assert 1 <= len(peak["probes"]) <= 3 and peak["latency_bound_ms"] == 30 and peak["percentile"] == 0.9
    for probe in peak["probes"]:
        assert (Path(probe["log_dir"]) / "mlperf_log_detail.txt").is_file()
        assert probe["validity"] == ("VALID" if probe["valid"] else "INVALID")
    valid = [p["qps"] for p in peak["probes"] if p["valid"]]
    assert peak["peak_qps"] == (max(valid) if valid else None)
    reported = record["scenario"]["result"]
    chosen = peak["peak_qps"] or peak["probes"][-1]["qps"]
    assert reported["target"]["qps"] == pytest.approx(chosen, rel=1e-4)  # LoadGen logs it rounded
    assert record["scenario"]["accuracy"] == {
        "checked": False,
        "reason": "scenario.accuracy is false in the matrix",
    }
    assert statistics.median(record["latency_ms"]["samples"]) > 0


def test_without_loadgen_scenario_cells_skip_with_the_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlperf_loadgen" else real(name, *a)
    )
    planned = plan(str(ROOT / "matrices" / "loadgen.yaml"))
    reasons = {p.cell.id: p.skip for p in planned.cells}
    assert reasons["tiny-torch-cpu-fp32-b8-s32-prefill-server"] == (
        "MLPerf LoadGen (mlperf_loadgen) is not installed; pip install 'genrec-bench[loadgen]' "
        "(PyPI mlcommons-loadgen)"
    )
    assert planned.runnable == ()
