"""bench.profile_phase on CPU: the cell's own model and inputs, every operator accounted per call."""

from __future__ import annotations

import json

import pytest
import torch

from genrec_bench.bench import profile_phase


def test_cpu_profile_lists_the_phase_operators_per_call(tmp_path, capsys):
    out = tmp_path / "profile.json"
    argv = ["--model", "tiny", "--phase", "decode", "--batch", "3", "--precision", "fp32", "--device", "cpu"]
    assert profile_phase.main([*argv, "--kernel", "torch", "--calls", "4", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["shape"] == {
        "model": "tiny",
        "phase": "decode",
        "batch": 3,
        "precision": "fp32",
        "kernel": "torch",
        "device": "cpu",
        "mode": "eager",
    }
    assert data["median_call_ms"] > 0
    names = [k["name"] for k in data["kernels"]]
    assert "aten::topk" in names  # the catalogue step of every decode call
    shares = [k["ms_per_call"] for k in data["kernels"]]
    assert shares == sorted(shares, reverse=True) and all(s > 0 for s in shares)
    assert data["kernel_ms_per_call"] == pytest.approx(sum(shares))
    assert "tiny decode b3 fp32 kernel=torch on cpu: " in capsys.readouterr().out


def test_compiled_profile_times_the_compiled_graph(tmp_path):
    out = tmp_path / "profile.json"
    argv = ["--model", "tiny", "--phase", "prefill", "--batch", "2", "--kernel", "torch", "--device", "cpu"]
    assert profile_phase.main([*argv, "--mode", "compile", "--calls", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["shape"]["mode"] == "compile"
    # Inductor's fused kernels run where eager runs aten operators one by one.
    assert any("Torch-Compiled Region" in k["name"] or "graph" in k["name"].lower() for k in data["kernels"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_profile_without_a_gpu_says_so(capsys):
    assert profile_phase.main(["--model", "tiny"]) == 2
    assert "no CUDA device here; use --device cpu" in capsys.readouterr().err


def test_triton_kernels_on_cpu_are_refused_with_the_fix(capsys):
    assert profile_phase.main(["--model", "tiny", "--device", "cpu", "--kernel", "triton"]) == 2
    assert "kernel=triton needs --device cuda" in capsys.readouterr().err
