"""What every kernel micro-benchmark shares: timing over rotating inputs (CUDA events via triton's do_bench,
statistics by bench.stats), the HBM ceiling measured in the run, the check against the fp32 reference before
anything is timed, and the record each provider gets."""

from __future__ import annotations

import datetime
import itertools
import math
import platform
from collections.abc import Callable

import torch

from genrec_bench.bench.stats import percentile, thin
from genrec_bench.kernels.tolerances import tolerance

L2_BYTES = 50 * 2**20  # H100; inputs are rotated over at least 4× this
STORED_SAMPLES = 1000  # per-call samples a record keeps (evenly thinned), for the history's significance test


def _do_bench(fn: Callable[[], object]) -> dict:
    """Median, 20th and 80th percentile in µs of do_bench's own per-call samples (CUDA events, L2 flushed),
    and the samples themselves."""
    import triton.testing

    samples_us = [s * 1e3 for s in triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="all")]
    return {
        "median_us": percentile(samples_us, 50),
        "p20_us": percentile(samples_us, 20),
        "p80_us": percentile(samples_us, 80),
        "samples_us": samples_us,
    }


def hbm_copy_gbps(nbytes: int = 2**30) -> dict:
    """Device-to-device copy bandwidth (read + write bytes / time): the HBM ceiling the kernels are held
    to."""
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    timed = _do_bench(lambda: dst.copy_(src))
    med, moved = timed["median_us"], 2 * nbytes
    return {
        "bytes": moved,
        "median_us": med,
        "p20_us": timed["p20_us"],
        "p80_us": timed["p80_us"],
        "gbps": moved / med / 1e3,
    }


def copies(make: Callable[[int], tuple], bytes_each: int) -> list[tuple]:
    count = min(32, max(2, math.ceil(4 * L2_BYTES / max(bytes_each, 1))))
    return [make(i) for i in range(count)]


def _rotating(op: Callable, inputs: list[tuple]) -> Callable[[], object]:
    cycle = itertools.cycle(inputs)
    return lambda: op(*next(cycle))


def time_op(op: Callable, inputs: list[tuple]) -> dict:
    """Median/p20/p80 of the op over rotating inputs, twice: replaying one CUDA graph per input copy (device
    time, free of Python launch cost: the figure compared with the targets) and as plain launches."""
    launch = _do_bench(_rotating(op, inputs))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up off the default stream before capture, as capture requires
        for args in inputs[:3]:
            op(*args)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    try:
        graphs = []
        for args in inputs:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                op(*args)
            graphs.append(graph)
    except RuntimeError as exc:  # a provider that syncs inside cannot be captured: keep its launch timing
        print(f"  (not capturable: {type(exc).__name__}: {str(exc)[:120]}; using launch timing)", flush=True)
        return {"timing": launch, "timing_mode": "launch", "launch": launch}
    cycle = itertools.cycle(graphs)
    graphed = _do_bench(lambda: next(cycle).replay())
    return {"timing": graphed, "timing_mode": "cuda_graph", "launch": launch}


def copy_us(nbytes: int) -> float:
    """Median time of a device-to-device copy moving ``nbytes`` (half read, half written): the practical
    floor for an op of that many bytes, launch and ramp-up included, which the 3 TB/s figure leaves out."""
    src = torch.empty(max(nbytes // 2, 1), dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    return _do_bench(lambda: dst.copy_(src))["median_us"]


def record(op, provider, shape, dtype, nbytes, hbm_gbps, timed: dict, same_bytes_copy_us: float, **extra):
    timing = timed["timing"]
    med, lo, hi = timing["median_us"], timing["p20_us"], timing["p80_us"]
    gbps = nbytes / med / 1e3
    return {
        "op": op,
        "provider": provider,
        "shape": shape,
        "dtype": str(dtype).replace("torch.", ""),
        "timing_mode": timed["timing_mode"],
        "median_us": round(med, 3),
        "p20_us": round(lo, 3),
        "p80_us": round(hi, 3),
        "launch_median_us": round(timed["launch"]["median_us"], 3),
        "bytes": nbytes,
        "gbps": round(gbps, 1),
        "hbm_fraction": round(gbps / hbm_gbps, 3),
        "floor_us": round(nbytes / hbm_gbps / 1e3, 3),
        "same_bytes_copy_us": round(same_bytes_copy_us, 3),
        "samples_us": [round(s, 3) for s in thin(timing["samples_us"], STORED_SAMPLES)],
        **extra,
    }


def check(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, terms: int, what: str) -> str | None:
    """None when ``got`` matches the fp32 reference, else why not (the provider is then not timed)."""
    try:
        torch.testing.assert_close(got, want, **tolerance(dtype, terms=terms))
    except AssertionError as exc:
        print(f"{what} disagrees with the fp32 reference; not timing it\n{exc}", flush=True)
        return str(exc).splitlines()[0]
    return None


def run_providers(
    op: str,
    providers: dict,
    inputs: list,
    want,
    *,
    dtype,
    check_size: int,
    shape: dict,
    nbytes: int,
    hbm_gbps: float,
    autotuned,
) -> list[dict]:
    """Check every provider against `want`, then time the ones that agree; a wrong one is recorded, not
    timed."""
    same_bytes = copy_us(nbytes)
    records = []
    for name, fn in providers.items():
        error = check(fn(*inputs[0]), want, dtype, check_size, f"{op} {name}")
        if error:
            records.append({"op": op, "provider": name, "shape": shape, "error": error})
            continue
        records.append(
            record(
                op,
                name,
                shape,
                dtype,
                nbytes,
                hbm_gbps,
                time_op(fn, inputs),
                same_bytes,
                input_copies=len(inputs),
            )
        )
        print(line(records[-1]), flush=True)
    tuned = getattr(autotuned, "best_config", None)
    if tuned is not None and "error" not in records[0]:
        records[0]["config"] = str(tuned)
    return records


def line(r: dict) -> str:
    return (
        f"{r['op']:<15} {r['provider']:<48} {r['dtype']:<9} {r['median_us']:>9.2f} us "
        f"[{r['p20_us']:.2f}, {r['p80_us']:.2f}] ({r['timing_mode']}; launches {r['launch_median_us']:.2f})"
        f"  {r['gbps']:>5.0f} GB/s {100 * r['hbm_fraction']:5.1f}% HBM  floor {r['floor_us']:.2f} us,"
        f" same-bytes copy {r['same_bytes_copy_us']:.2f} us"
    )


def machine() -> dict:
    """Device and software versions for the record, and the hardware facts the history fingerprints."""
    import triton

    from genrec_bench.bench.env import cpu_name, gpu_facts

    info = {
        "device": torch.cuda.get_device_name(),
        **gpu_facts(),
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import pynvml
    except ImportError:
        info["driver"] = "unknown (no nvidia-ml-py)"
        return info
    try:
        pynvml.nvmlInit()
        info["driver"] = pynvml.nvmlSystemGetDriverVersion()
    except pynvml.NVMLError as exc:  # the driver version is nice to have, not worth failing a run for
        info["driver"] = f"unknown ({exc})"
    return info
