"""Kernel micro-benchmark records as the history, the gate and the dashboard read them (no GPU: do_bench's
samples are stood in for)."""

import datetime
import json

import numpy as np
import pytest

from genrec_bench.reports.gate import MANN_WHITNEY, judge
from genrec_bench.reports.history import read_run


@pytest.fixture
def kernel_record(monkeypatch):
    """record() of bench.kernel_micro over `samples_ms` that do_bench is made to return."""
    triton_testing = pytest.importorskip("triton.testing")
    from genrec_bench.bench.kernel_micro import common

    def make(samples_ms, provider="triton"):
        monkeypatch.setattr(triton_testing, "do_bench", lambda fn, **kw: list(samples_ms))
        timed = common._do_bench(lambda: None)
        return common.record(
            "interaction",
            provider,
            {"B": 8, "F": 4, "D": 16},
            "torch.float16",
            10_000,
            3000.0,
            {"timing": timed, "timing_mode": "cuda_graph", "launch": timed},
            5.0,
        )

    return make


def write(path, records, day):
    machine = {
        "device": "NVIDIA H100 80GB HBM3",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "gpu_count": 1,
        "gpu_memory_mib": 81559,
        "compute_capability": "9.0",
        "cpu": "Intel(R) Xeon(R) Processor",
        "torch": "2.11.0",
        "cuda": "13.0",
        "triton": "3.6.0",
        "driver": "580.1",
        "date": datetime.datetime(2026, 11, 1 + day, tzinfo=datetime.timezone.utc).isoformat(),
    }
    path.write_text(json.dumps({"machine": machine, "hbm_copy": {"gbps": 3000.0}, "records": records}))
    return str(path)


def test_records_keep_thinned_samples_and_the_gate_tests_them(kernel_record, tmp_path):
    rng = np.random.default_rng(0)
    first = kernel_record(rng.lognormal(np.log(0.02), 0.02, 3000))
    assert len(first["samples_us"]) == 1000 and first["median_us"] == pytest.approx(20.0, rel=0.01)
    assert first["gbps"] == pytest.approx(10_000 / first["median_us"] / 1e3, rel=0.01)
    runs = [
        read_run(
            write(
                tmp_path / f"k{d}.json",
                [
                    kernel_record(rng.lognormal(np.log(0.02 * (1.25 if d == 6 else 1)), 0.02, 500)),
                    {
                        "op": "interaction",
                        "provider": "torch-eager-native",
                        "shape": {"B": 8},
                        "error": "disagrees with the fp32 reference",
                    },
                ],
                d,
            )
        )
        for d in range(7)
    ]
    assert runs[0].machine == "nvidia-h100-80gb-hbm3" and runs[0].hardware["gpu_count"] == 1
    result = judge(runs[-1], runs[:-1])
    (median,) = result.verdicts[:1]
    assert (median.metric, median.verdict, median.test) == ("median_us", "regression", MANN_WHITNEY)
    assert median.cell == "interaction-triton-float16-B8-F4-D16"
    assert [o.verdict for o in result.oracle] == ["ok", "failing"]


def test_a_broken_kernel_record_is_named(tmp_path):
    path = write(tmp_path / "k.json", [{"op": "interaction", "provider": "triton", "median_us": "fast"}], 0)
    run = read_run(path)
    assert run.problems == [f"{path}: records[0]: dtype: missing or not str (skipped)"] and not run.kernels
