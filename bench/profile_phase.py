"""Where one phase's time goes: ``python -m genrec_bench.bench.profile_phase --model base --phase prefill
--batch 256 --precision fp16 --kernel triton [--device cuda] [--json OUT.json]``.

The cell's model and inputs exactly as a bench cell builds them (the preset's seeded weights, placed and cast
by the torch backend's own ``placed_copy``, the cell's seeded users), run eagerly or under
``torch.compile`` (``--mode``): warm-up calls, then the
median time of a call (CUDA events on a GPU), then ``torch.profiler`` over a few calls. It prints the CUDA
kernels by device time per call (on ``--device cpu``: the operators by their own CPU time) and writes them as
JSON: what a cell that misses its target spends its time on. (A CUDA graph replays the same kernels; what
it removes is launch cost, which ``median_call_ms`` minus ``kernel_ms_per_call`` shows.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from genrec_bench.backends.torch_backend import DTYPES
from genrec_bench.bench.cell_runner import INPUT_SEED
from genrec_bench.bench.env import cpu_name
from genrec_bench.bench.kernel_micro.common import machine
from genrec_bench.models import build_model, draw, phase_inputs, preset
from genrec_bench.models.embedding import placed_copy
from genrec_bench.models.recommender import PhaseModule


def _median_call_ms(forward, inputs, calls: int, device: str) -> float:
    times = []
    for _ in range(calls):
        if device == "cpu":
            start = time.perf_counter()
            forward(*inputs)
            times.append((time.perf_counter() - start) * 1e3)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        forward(*inputs)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _self_time_us(event, device: str) -> float:
    if device == "cpu":
        return event.self_cpu_time_total
    # device_time_total since torch 2.4; cuda_time_total before
    return getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)


def profile_phase(
    model_name: str,
    phase: str,
    batch: int,
    precision: str,
    kernel: str,
    calls: int,
    device: str = "cuda",
    mode: str = "eager",
) -> dict:
    """Per-kernel time of one phase call (ms per call, descending), and the call's median time."""
    from torch.profiler import ProfilerActivity, profile

    cfg = preset(model_name)
    dtype = DTYPES[precision]
    model = placed_copy(build_model(cfg, kernel=kernel), device, dtype)
    inputs = phase_inputs(
        model, phase, draw(cfg, phase, batch, cfg.max_seq_len, seed=INPUT_SEED), device, dtype
    )
    activity = ProfilerActivity.CPU if device == "cpu" else ProfilerActivity.CUDA
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    forward = PhaseModule(model, phase)
    if mode == "compile":  # as the torch backend compiles a cell: one shape, one graph
        forward = torch.compile(forward, dynamic=False)
    with torch.inference_mode():
        for _ in range(5):  # compiles and autotunes the Triton kernels
            forward(*inputs)
        sync()
        call_ms = _median_call_ms(forward, inputs, 20, device)
        with profile(activities=[activity]) as prof:
            for _ in range(calls):
                forward(*inputs)
            sync()
    kernels = []
    for event in prof.key_averages():
        own_us = _self_time_us(event, device)
        if own_us > 0 and event.count >= calls:  # kernels of the calls, not the profiler's own
            kernels.append(
                {"name": event.key, "ms_per_call": own_us / calls / 1e3, "launches": event.count // calls}
            )
    kernels.sort(key=lambda k: -k["ms_per_call"])
    return {
        "shape": {
            "model": model_name,
            "phase": phase,
            "batch": batch,
            "precision": precision,
            "kernel": kernel,
            "device": device,
            "mode": mode,
        },
        "median_call_ms": call_ms,
        "kernel_ms_per_call": sum(k["ms_per_call"] for k in kernels),
        "kernels": kernels,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.profile_phase", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default="base")
    parser.add_argument("--phase", default="prefill", choices=("prefill", "decode", "rank"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--precision", default="fp16", choices=tuple(DTYPES))
    parser.add_argument("--kernel", default="triton", choices=("torch", "triton"))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--mode", default="eager", choices=("eager", "compile"))
    parser.add_argument("--calls", type=int, default=10, help="calls under the profiler")
    parser.add_argument("--top", type=int, default=15, help="kernels to print")
    parser.add_argument("--json", metavar="OUT", help="also write the profile here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench.profile_phase: no CUDA device here; use --device cpu", file=sys.stderr)
        return 2
    if args.device == "cpu" and args.kernel == "triton":
        print("bench.profile_phase: kernel=triton needs --device cuda", file=sys.stderr)
        return 2
    result = profile_phase(
        args.model, args.phase, args.batch, args.precision, args.kernel, args.calls, args.device, args.mode
    )
    on_cpu = {"device": "cpu", "cpu": cpu_name(), "torch": torch.__version__}
    result["machine"] = machine() if args.device == "cuda" else on_cpu
    print(
        f"{args.model} {args.phase} b{args.batch} {args.precision} kernel={args.kernel} on {args.device}: "
        f"{result['median_call_ms']:.3f} ms a call ({args.mode}); under the profiler "
        f"{result['kernel_ms_per_call']:.3f} ms in {'kernels' if args.device == 'cuda' else 'operators'}"
    )
    for k in result["kernels"][: args.top]:
        share = k["ms_per_call"] / result["kernel_ms_per_call"]
        print(f"  {k['ms_per_call']:8.3f} ms  {share:6.1%}  x{k['launches']:<3d} {k['name'][:100]}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
