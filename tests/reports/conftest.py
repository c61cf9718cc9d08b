"""Synthetic runs for the reports' tests: schema-valid records and pytest-benchmark files built from numbers
the test chooses (seeded), so every expected verdict is known. Synthetic data lives here only, never in
reports/."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genrec_bench.bench.record import build_record
from genrec_bench.bench.stats import latency_summary

ROOT = Path(__file__).resolve().parents[2]
H100 = {
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "gpu_count": 1,
    "gpu_memory_mib": 81559,
    "compute_capability": "9.0",
}
CELLS = (
    "tiny-torch-cuda-fp32-b8-s32-prefill",
    "tiny-torch-cuda-fp16-b8-s32-prefill",
    "tiny-torch-cuda-fp32-b8-s32-decode",
)


def make_record(
    cell_id: str,
    samples,
    *,
    memory: float = 1000.0,
    passed: bool = True,
    rel_err: float = 1e-6,
    tolerance: float = 1e-3,
) -> dict:
    """A schema-valid v2 record of `cell_id` (model-backend-precision-bB-sS-phase) with these latency
    samples."""
    model, _, _, precision, batch, seq, phase = cell_id.split("-")
    batch, seq = int(batch[1:]), int(seq[1:])
    samples = [float(s) for s in samples]
    latency = latency_summary(samples) | {
        "p50_ci95": [min(samples), max(samples)],
        "samples": samples,
        "samples_stored": "all",
    }
    return build_record(
        cell={
            "id": cell_id,
            "model": model,
            "backend": "torch-cuda",
            "mode": "eager",
            "precision": precision,
            "batch": batch,
            "seq_len": seq,
            "phase": phase,
            "kernel": "torch",
            "matrix": "synthetic",
            "mean_history": 16.0,
        },
        latency_ms=latency,
        throughput={"sequences_per_s": batch * 1000.0 / latency["p50"]},
        timer={"method": "cuda_event", "rounds": len(samples), "warmup_rounds": 2},
        memory={
            "host_peak_rss_mb": 500.0,
            "device_used_peak_mb": memory,
            "process_used_peak_mb": memory,
            "torch_max_allocated_mb": memory / 2,
        },
        numerics={
            "reference": "fp32 on CPU",
            "max_abs_err": rel_err,
            "max_rel_err": rel_err,
            "topk_agreement": 1.0,
            "tolerance": {"max_rel_err": tolerance, "topk_agreement": 0.99},
            "passed": passed,
            "message": "within tolerance" if passed else "max_rel_err above tolerance",
        },
        env={
            "device": "cuda:0",
            "device_name": H100["gpu_name"],
            "driver": "580.1",
            "python": "3.12",
            "libraries": {"torch": "2.11.0"},
        },
        backend={"name": "torch-cuda", "mode": "eager", "device": "cuda:0", "compile": None},
    )


def write_run(
    path: Path,
    records: list[dict],
    *,
    when: datetime.datetime,
    hardware: dict = H100,
    torch: str = "2.11.0",
    cpu: str = "Intel(R) Xeon(R) Processor",
) -> Path:
    """A pytest-benchmark JSON file holding `records`, as `--benchmark-json` writes it."""
    genrec = {
        "device": "cuda:0" if hardware.get("gpu_name") else "cpu",
        "device_name": hardware.get("gpu_name") or cpu,
        "driver": "580.1",
        "cuda": "13.0",
        "cpu": cpu,
        "libraries": {"torch": torch},
        **hardware,
    }
    doc = {
        "machine_info": {"genrec": genrec},
        "commit_info": {"id": "0123456789abcdef", "dirty": False},
        "datetime": when.isoformat(),
        "version": "5.3.1",
        "benchmarks": [
            {"name": f"test_cell[{r['cell']['id']}]", "stats": {}, "extra_info": r} for r in records
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def night(rng, level: float, cv: float = 0.02, n: int = 60):
    """One night's samples: lognormal around `level` with coefficient of variation `cv`."""
    return level * rng.lognormal(0.0, cv, n)


@pytest.fixture
def nights(tmp_path):
    """Six quiet nights of CELLS (seeded), as files; returns (their paths, a maker of tonight's file)."""
    rng = np.random.default_rng(7)
    start = datetime.datetime(2026, 11, 1, 3, 0, tzinfo=datetime.timezone.utc)
    levels = {c: 1.0 + i for i, c in enumerate(CELLS)}
    paths = [
        write_run(
            tmp_path / f"night{d}.json",
            [make_record(c, night(rng, lv)) for c, lv in levels.items()],
            when=start + datetime.timedelta(days=d),
        )
        for d in range(6)
    ]

    def tonight(name="tonight.json", *, scale=None, passed=None, memory=None, **kwargs) -> Path:
        scale, passed, memory = scale or {}, passed or {}, memory or {}
        records = [
            make_record(
                c,
                night(rng, lv * scale.get(c, 1.0)),
                passed=passed.get(c, True),
                memory=memory.get(c, 1000.0),
            )
            for c, lv in levels.items()
        ]
        return write_run(tmp_path / name, records, when=start + datetime.timedelta(days=6), **kwargs)

    return paths, tonight


def reports(*args, cwd=ROOT, module="reports", **kwargs) -> subprocess.CompletedProcess:
    """`python -m reports ARGS` in a subprocess, as a CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.fixture
def kit():
    """The helpers above, for test modules (conftest modules are not importable under
    --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        make_record=make_record,
        write_run=write_run,
        night=night,
        reports=reports,
        CELLS=CELLS,
        H100=H100,
        ROOT=ROOT,
    )
