"""Kernel micro-benchmarks on a CUDA GPU: ``python -m bench.kernel_micro --json OUT.json``.

For each op and shape: the Triton kernel (autotuned, and each tile config when ``--sweep``), the torch
reference eagerly and under torch.compile, and the usual hand-written torch form of the op, all on the same
inputs. Timing is ``triton.testing.do_bench`` (CUDA events, L2 flushed before every call, median and 20/80th
percentiles); on top, each call takes the next of several input copies whose total exceeds 4 × L2, so no input
sits in L2 from an earlier call. Each record carries the bytes the op must move, the achieved GB/s, and the
fraction of the HBM bandwidth of a device-to-device copy measured in the same run. Every timed provider is
first checked against the fp32 reference, so a wrong kernel is never timed.
"""
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

from genrec_bench.kernels.interaction import interaction, interaction_reference, tril_flat_index
from genrec_bench.kernels.jagged_pooling import jagged_pooling, jagged_pooling_reference
from genrec_bench.kernels.tolerances import tolerance

L2_BYTES = 50 * 2**20  # H100; inputs are rotated over at least 4× this
QUANTILES = (0.5, 0.2, 0.8)


def _do_bench(fn: Callable[[], object]) -> tuple[float, float, float]:
    import triton.testing

    med, lo, hi = triton.testing.do_bench(fn, warmup=25, rep=200, quantiles=list(QUANTILES))
    return med * 1e3, lo * 1e3, hi * 1e3  # µs


def hbm_copy_gbps(nbytes: int = 2**30) -> dict:
    """Device-to-device copy bandwidth (read + write bytes / time): the HBM ceiling the kernels are held to."""
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    med, lo, hi = _do_bench(lambda: dst.copy_(src))
    moved = 2 * nbytes
    return {"bytes": moved, "median_us": med, "p20_us": lo, "p80_us": hi, "gbps": moved / med / 1e3}


def _copies(make: Callable[[int], tuple], bytes_each: int) -> list[tuple]:
    count = min(32, max(2, math.ceil(4 * L2_BYTES / max(bytes_each, 1))))
    return [make(i) for i in range(count)]


def _rotating(op: Callable, inputs: list[tuple]) -> Callable[[], object]:
    cycle = itertools.cycle(inputs)
    return lambda: op(*next(cycle))


def _time(op: Callable, inputs: list[tuple]) -> dict:
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
    return _do_bench(lambda: dst.copy_(src))[0]


def _record(op, provider, shape, dtype, nbytes, hbm_gbps, timed: dict, same_bytes_copy_us: float, **extra):
    med, lo, hi = timed["timing"]
    gbps = nbytes / med / 1e3
    return {
        "op": op, "provider": provider, "shape": shape, "dtype": str(dtype).replace("torch.", ""),
        "timing_mode": timed["timing_mode"],
        "median_us": round(med, 3), "p20_us": round(lo, 3), "p80_us": round(hi, 3),
        "launch_median_us": round(timed["launch"][0], 3),
        "bytes": nbytes, "gbps": round(gbps, 1), "hbm_fraction": round(gbps / hbm_gbps, 3),
        "floor_us": round(nbytes / hbm_gbps / 1e3, 3), "same_bytes_copy_us": round(same_bytes_copy_us, 3),
        **extra,
    }


def _check(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, terms: int, what: str) -> str | None:
    """None when ``got`` matches the fp32 reference, else why not (the provider is then not timed)."""
    try:
        torch.testing.assert_close(got, want, **tolerance(dtype, terms=terms))
    except AssertionError as exc:
        print(f"{what} disagrees with the fp32 reference; not timing it\n{exc}", flush=True)
        return str(exc).splitlines()[0]
    return None


def _native_interaction(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The usual hand-written form: bmm in the input dtype, then gather the triangle."""
    return torch.bmm(x, x.transpose(1, 2)).flatten(1).index_select(1, index)


def bench_interaction(batch, features, dim, dtype, hbm_gbps, *, sweep: bool) -> list[dict]:
    """Time every interaction provider at one shape; returns records."""
    from genrec_bench.kernels.interaction import triton as impl

    pairs = features * (features - 1) // 2
    itemsize = torch.tensor([], dtype=dtype).element_size()
    nbytes = (batch * features * dim + batch * pairs) * itemsize
    shape = {"B": batch, "F": features, "D": dim}
    gen = torch.Generator(device="cuda").manual_seed(0)
    inputs = _copies(
        lambda i: (torch.randn(batch, features, dim, device="cuda", generator=gen).to(dtype),),
        batch * features * dim * itemsize,
    )
    index = tril_flat_index(features, device="cuda")
    native = torch.compile(_native_interaction, dynamic=False)
    providers = {
        "triton": lambda x: interaction(x, kernel="triton"),
        "torch-eager-fp32ref": interaction_reference,
        "torch-compile-fp32ref": torch.compile(interaction_reference, dynamic=False),
        "torch-eager-native": lambda x: _native_interaction(x, index),
        "torch-compile-native": lambda x: native(x, index),
    }
    if sweep:
        for c in impl.SWEEP_CONFIGS_FP32 if dtype == torch.float32 else impl.SWEEP_CONFIGS:
            cfg = {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages}
            name = "triton-" + "-".join(f"{k}{v}" for k, v in cfg.items())
            providers[name] = lambda x, cfg=cfg: impl.interaction_triton(x, config=cfg)
    want = interaction_reference(inputs[0][0])
    return _run_providers("interaction", providers, inputs, want, dtype=dtype, check_size=dim, shape=shape,
                          nbytes=nbytes, hbm_gbps=hbm_gbps, autotuned=impl.interaction_autotuned)


def _run_providers(op: str, providers: dict, inputs: list, want, *, dtype, check_size: int, shape: dict,
                   nbytes: int, hbm_gbps: float, autotuned) -> list[dict]:
    """Check every provider against `want`, then time the ones that agree; a wrong one is recorded, not timed."""
    same_bytes = copy_us(nbytes)
    records = []
    for name, fn in providers.items():
        error = _check(fn(*inputs[0]), want, dtype, check_size, f"{op} {name}")
        if error:
            records.append({"op": op, "provider": name, "shape": shape, "error": error})
            continue
        records.append(_record(op, name, shape, dtype, nbytes, hbm_gbps, _time(fn, inputs), same_bytes,
                               input_copies=len(inputs)))
        print(_line(records[-1]), flush=True)
    tuned = getattr(autotuned, "best_config", None)
    if tuned is not None and "error" not in records[0]:
        records[0]["config"] = str(tuned)
    return records


def _jagged_inputs(batch, mean_length, dim, items, dtype, seed):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    # Lengths uniform in [0, 2·mean]: jagged, with empty rows, averaging mean_length.
    lengths = torch.randint(0, 2 * mean_length + 1, (batch,), device="cuda", generator=gen)
    offsets = torch.zeros(batch + 1, dtype=torch.int64, device="cuda")
    offsets[1:] = torch.cumsum(lengths, 0)
    values = torch.randint(0, items, (int(offsets[-1]),), device="cuda", generator=gen)
    return values, offsets


def bench_jagged(batch, mean_length, dim, items, dtype, mode, hbm_gbps, *, sweep: bool) -> list[dict]:
    """Time every jagged pooling provider at one shape; ids uniform over a table far larger than L2."""
    from genrec_bench.kernels.jagged_pooling import triton as impl

    table = torch.randn(items, dim, device="cuda").to(dtype)
    itemsize = table.element_size()
    inputs = [(*_jagged_inputs(batch, mean_length, dim, items, dtype, s), table) for s in range(8)]
    total = sum(v.numel() for v, _, _ in inputs) / len(inputs)
    # Table rows gathered + ids + offsets + output: what the op must move at the least.
    nbytes = int(total * (dim * itemsize + 8) + (batch + 1) * 8 + batch * dim * itemsize)
    shape = {"B": batch, "mean_length": mean_length, "D": dim, "V": items, "mode": mode}
    compiled = torch.compile(jagged_pooling_reference, dynamic=True)
    providers = {
        "triton": lambda v, o, t: jagged_pooling(v, o, t, mode=mode, kernel="triton"),
        "torch-eager-fp32ref": lambda v, o, t: jagged_pooling_reference(v, o, t, mode=mode),
        "torch-compile-fp32ref": lambda v, o, t: compiled(v, o, t, mode=mode),
        "torch-embedding_bag": lambda v, o, t: torch.nn.functional.embedding_bag(
            v, t, o[:-1], mode=mode, include_last_offset=False),
    }
    if sweep:
        for c in impl.SWEEP_CONFIGS:
            cfg = {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages}
            name = "triton-" + "-".join(f"{k}{v}" for k, v in cfg.items())
            providers[name] = lambda v, o, t, cfg=cfg: impl.jagged_pooling_triton(v, o, t, mode=mode, config=cfg)
    want = jagged_pooling_reference(*inputs[0], mode=mode)
    return _run_providers("jagged_pooling", providers, inputs, want, dtype=dtype, check_size=2 * mean_length,
                          shape=shape, nbytes=nbytes, hbm_gbps=hbm_gbps, autotuned=impl.jagged_pooling_autotuned)


def _line(r: dict) -> str:
    return (f"{r['op']:<15} {r['provider']:<48} {r['dtype']:<9} {r['median_us']:>9.2f} us "
            f"[{r['p20_us']:.2f}, {r['p80_us']:.2f}] ({r['timing_mode']}; launches {r['launch_median_us']:.2f})"
            f"  {r['gbps']:>5.0f} GB/s {100 * r['hbm_fraction']:5.1f}% HBM  floor {r['floor_us']:.2f} us,"
            f" same-bytes copy {r['same_bytes_copy_us']:.2f} us")


def machine() -> dict:
    """Device and software versions for the record."""
    import triton

    info = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton.__version__,
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


def main(argv: list[str] | None = None) -> int:
    """Run the micro-benchmarks and write one JSON file."""
    parser = argparse.ArgumentParser(prog="python -m bench.kernel_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, metavar="OUT", help="where to write the records")
    parser.add_argument("--ops", default="interaction,jagged_pooling", help="comma-separated ops to run")
    parser.add_argument("--sweep", action="store_true", help="also time each tile config of the kernels")
    parser.add_argument("--quick", action="store_true", help="one small shape per op (a smoke run)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench.kernel_micro needs a CUDA device; none is present", file=sys.stderr)
        return 2
    ops = set(args.ops.split(","))
    info = machine()
    hbm = hbm_copy_gbps(2**28 if args.quick else 2**30)
    print(f"{info}\nHBM device-to-device copy: {hbm['gbps']:.0f} GB/s", flush=True)
    records: list[dict] = []
    if "interaction" in ops:
        shapes = [(256, 32, 128, torch.float16)] if args.quick else [
            (4096, 32, 128, torch.float16), (4096, 32, 128, torch.bfloat16), (4096, 32, 128, torch.float32),
            (1024, 27, 128, torch.float16)]
        for i, (b, f, d, dt) in enumerate(shapes):
            records += bench_interaction(b, f, d, dt, hbm["gbps"], sweep=args.sweep and i in (0, 2))
    if "jagged_pooling" in ops:
        shapes = [(256, 16, 128, 10_000, torch.float16, "sum")] if args.quick else [
            (4096, 128, 128, 1_000_000, torch.float16, "sum"), (4096, 128, 128, 1_000_000, torch.float32, "sum"),
            (16384, 128, 128, 1_000_000, torch.bfloat16, "mean")]
        for i, (b, n, d, v, dt, mode) in enumerate(shapes):
            records += bench_jagged(b, n, d, v, dt, mode, hbm["gbps"], sweep=args.sweep and i == 0)
    with open(args.json, "w") as fh:
        json.dump({"machine": info, "hbm_copy": hbm, "records": records}, fh, indent=1)
    print(f"wrote {len(records)} records to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
