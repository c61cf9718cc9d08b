"""Kernel micro-benchmarks on a CUDA GPU: ``python -m genrec_bench.bench.kernel_micro --json OUT.json``.

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
import sys

import torch

from genrec_bench.bench.kernel_micro.common import parse, write
from genrec_bench.bench.kernel_micro.interaction import bench_interaction
from genrec_bench.bench.kernel_micro.jagged_pooling import bench_jagged


def main(argv: list[str] | None = None) -> int:
    """Run the micro-benchmarks and write one JSON file."""
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.kernel_micro", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ops", default="interaction,jagged_pooling", help="comma-separated ops to run")
    parsed = parse(parser, argv)
    if parsed is None:
        return 2
    args, info, hbm = parsed
    ops = set(args.ops.split(","))
    records: list[dict] = []
    if "interaction" in ops:
        shapes = (
            [(256, 32, 128, torch.float16)]
            if args.quick
            else [
                (4096, 32, 128, torch.float16),
                (4096, 32, 128, torch.bfloat16),
                (4096, 32, 128, torch.float32),
                (1024, 27, 128, torch.float16),
            ]
        )
        for i, (b, f, d, dt) in enumerate(shapes):
            records += bench_interaction(b, f, d, dt, hbm["gbps"], sweep=args.sweep and i in (0, 2))
    if "jagged_pooling" in ops:
        shapes = (
            [(256, 16, 128, 10_000, torch.float16, "sum")]
            if args.quick
            else [
                (4096, 128, 128, 1_000_000, torch.float16, "sum"),
                (4096, 128, 128, 1_000_000, torch.float32, "sum"),
                (16384, 128, 128, 1_000_000, torch.bfloat16, "mean"),
            ]
        )
        for i, (b, n, d, v, dt, mode) in enumerate(shapes):
            records += bench_jagged(b, n, d, v, dt, mode, hbm["gbps"], sweep=args.sweep and i == 0)
    write(args.json, info, hbm, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
