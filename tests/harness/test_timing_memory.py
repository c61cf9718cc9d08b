import time

import pytest

from genrec_bench.bench.memory import MemoryProbe
from genrec_bench.bench.timing import plan_rounds, time_closure
from genrec_bench.matrices.loader import Timing


@pytest.mark.parametrize("warm_ms, rounds", [(0.0, 30), (1.0, 30), (100.0, 20), (1000.0, 5), (10_000.0, 5)])
def test_rounds_fit_the_time_budget_but_never_drop_under_min(warm_ms, rounds):
    assert plan_rounds(Timing(rounds=30, min_rounds=5, max_time_s=2.0), warm_ms) == rounds


def test_time_closure_samples_every_timed_round(benchmark):
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.002)
        return "done"

    result = time_closure(
        benchmark,
        work,
        "host_clock",
        lambda: None,
        Timing(warmup_rounds=2, rounds=6, min_rounds=2, max_time_s=10),
    )
    assert len(calls) == 2 + 6
    assert result.rounds == 6 and len(result.samples_ms) == 6
    assert all(s >= 2.0 for s in result.samples_ms)
    assert result.last_result == "done"


def test_memory_probe_sees_a_host_allocation():
    with MemoryProbe("cpu", interval_s=0.001) as probe:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch the pages so they count in RSS
        time.sleep(0.02)
    mem = probe.result()
    del block
    assert mem["host_peak_rss_mb"] - mem["host_rss_start_mb"] >= 60
    assert mem["device_used_peak_mb"] is None and mem["torch_max_allocated_mb"] is None


def test_a_cuda_probe_reads_the_peak_so_far_inside_its_block_and_the_whole_peak_after(monkeypatch):
    """A worker sends a cell's record while the probe is still open: the CUDA branch must not need __exit__.
    torch.cuda and NVML are stood in for, so this runs without a GPU."""
    import torch

    import genrec_bench.bench.memory as memory

    peaks = iter([10 * memory.MB, 30 * memory.MB])
    for name in ("empty_cache", "synchronize", "reset_peak_memory_stats"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: next(peaks))

    class NoNvml:
        handle, reason = None, "no NVML in this test"

        def __init__(self, index):
            pass

        def device_used(self):
            return None

        def process_used(self, pid):
            return None

    monkeypatch.setattr(memory, "_Nvml", NoNvml)
    with MemoryProbe("cuda:0", interval_s=0.001) as probe:
        inside = probe.result()
    after = probe.result()
    assert inside["torch_max_allocated_mb"] == 10
    assert after["torch_max_allocated_mb"] == 30
