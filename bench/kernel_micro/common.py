"""What every kernel micro-benchmark shares: timing over rotating inputs (CUDA events via triton's do_bench,
statistics by bench.stats), the HBM ceiling measured in the run, each provider checked before it is timed
(run_providers), the record each provider gets, and the command line (parse, write)."""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import platform
import sys
from collections.abc import Callable

import torch

from genrec_bench.bench.stats import percentile, thin
from genrec_bench.kernels.tolerances import tolerance

#: Where every micro-benchmark makes its inputs; only the tests' dry runs (CPU, Triton's interpreter, timing
#: stubbed) change it.
DEVICE = "cuda"
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


def line(r: dict) -> str:
    """One printed row of a record (TFLOP/s where the op counts FLOPs)."""
    if "error" in r:
        return f"{r['op']:<15} {r['provider']:<48} ERROR {r['error']}"
    flops = f" {r['tflops']:>7.1f} TFLOP/s" if "tflops" in r else ""
    return (
        f"{r['op']:<15} {r['provider']:<48} {r['dtype']:<9} {r['median_us']:>9.2f} us "
        f"[{r['p20_us']:.2f}, {r['p80_us']:.2f}]{flops} {r['gbps']:>6.0f} GB/s "
        f"{100 * r['hbm_fraction']:5.1f}% HBM ({r['timing_mode']}; launches {r['launch_median_us']:.1f}; "
        f"same-bytes copy {r['same_bytes_copy_us']:.2f} us)"
    )


def reference_check(want: torch.Tensor, dtype: torch.dtype, terms: int) -> Callable:
    """A provider check (see run_providers): the output on the first input copy matches the fp32 reference
    ``want`` within the dtype's tolerance for sums of ``terms`` products."""

    def check(out, args):
        torch.testing.assert_close(out, want, **tolerance(dtype, terms=terms))

    return check


#: Provider-name prefixes to run (``--providers``); empty: all of them.
SELECTED: tuple[str, ...] = ()


def select(prefixes: str) -> None:
    """Run only providers whose names start with one of these comma-separated prefixes ("" runs all)."""
    global SELECTED
    SELECTED = tuple(p for p in prefixes.split(",") if p)


def run_providers(
    op, providers: dict, checks: dict, inputs, *, shape, dtype, nbytes, hbm_gbps, flops=None
) -> list[dict]:
    """Check, then time, each provider on the input copies; ``checks[name](out, args)`` raises
    AssertionError when its output on the first copy is wrong (a provider without one is timed unchecked). A
    wrong provider, or one that cannot run here (a compile error, flash SDPA refusing a shape), is recorded
    with why, not timed. ``flops`` (the op's own count) adds FLOPs and TFLOP/s to each record."""
    same_bytes = copy_us(nbytes)
    records = []
    for name, fn in providers.items():
        if SELECTED and not name.startswith(SELECTED):
            continue
        check = checks.get(name)
        try:
            out = fn(*inputs[0])
            if check is not None:
                check(out, inputs[0])
        except Exception as exc:  # noqa: BLE001 - a wrong or failing provider must not end the run
            print(f"{op} {name}: not timed\n{type(exc).__name__}: {exc}", flush=True)
            records.append({"op": op, "provider": name, "shape": shape, "error": str(exc).splitlines()[0]})
            continue
        timed = time_op(fn, inputs)
        counted = (
            {}
            if flops is None
            else {"flops": flops, "tflops": round(flops / timed["timing"]["median_us"] / 1e6, 2)}
        )
        rec = record(
            op,
            name,
            shape,
            dtype,
            nbytes,
            hbm_gbps,
            timed,
            same_bytes,
            **counted,
            checked=check is not None,
            input_copies=len(inputs),
        )
        records.append(rec)
        print(line(rec), flush=True)
    return records


def note_config(records: list[dict], autotuned) -> None:
    """Add the config autotune chose to the autotuned provider's record."""
    tuned = getattr(autotuned, "best_config", None)
    for r in records:
        if r["provider"] == "triton" and "error" not in r and tuned is not None:
            r["config"] = str(tuned)


def start(prog: str, quick: bool) -> tuple[dict, dict] | None:
    """(machine info, HBM copy ceiling) for a run, or None (and a message) without a CUDA device."""
    if not torch.cuda.is_available():
        print(f"{prog} needs a CUDA device; none is present", file=sys.stderr)
        return None
    info = machine()
    hbm = hbm_copy_gbps(2**28 if quick else 2**30)
    print(f"{info}\nHBM device-to-device copy: {hbm['gbps']:.0f} GB/s", flush=True)
    return info, hbm


def write(path: str, info: dict, hbm: dict, records: list[dict]) -> None:
    """The run's JSON: machine, HBM ceiling and records (what `reports history add` reads)."""
    with open(path, "w") as fh:
        json.dump({"machine": info, "hbm_copy": hbm, "records": records}, fh, indent=1)
    print(f"wrote {len(records)} records to {path}")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None):
    """The options every micro-benchmark shares, parsed: (args, machine info, HBM ceiling), or None without
    CUDA."""
    parser.add_argument("--json", required=True, metavar="OUT", help="where to write the records")
    parser.add_argument("--sweep", action="store_true", help="also time each tile config of the kernels")
    parser.add_argument("--quick", action="store_true", help="a small shape (a smoke run)")
    parser.add_argument(
        "--providers",
        default="",
        metavar="PREFIXES",
        help="comma-separated provider-name prefixes to run, e.g. 'triton,torch-eager' (default all)",
    )
    args = parser.parse_args(argv)
    select(args.providers)
    started = start(parser.prog, args.quick)
    return None if started is None else (args, *started)


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
