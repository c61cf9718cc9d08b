"""Catalogue top-k micro-benchmarks on a CUDA GPU: ``python -m genrec_bench.bench.kernel_micro.topk --json
OUT.json``.

The full-catalogue step of the model: the top k of states @ items[1:]ᵀ per row. The Triton kernel never holds
the [B, N] logits; the torch providers are the model's own path (matmul in the input dtype, then torch.topk)
eagerly and under torch.compile. Default shapes: B=256 (and 1), N=1M items, d=256, k=100 — the ``base``
preset.

Each record adds the FLOPs of the scores (2·B·N·d) and TFLOP/s on them; bytes are the table read once plus the
states and the [B, k] answer. The Triton providers must pass ``check_topk`` (exact up to ties at the k-th
score) to be timed; the torch providers are timed either way, their check result recorded (rounding the logits
to fp16 before the top-k can reorder near-ties).
"""

from __future__ import annotations

import argparse
import sys

import torch

from genrec_bench.bench.kernel_micro import common
from genrec_bench.bench.kernel_micro.common import note_config, parse, run_providers, write
from genrec_bench.kernels.catalogue_topk import catalogue_topk, check_topk


def native_topk(states: torch.Tensor, table: torch.Tensor, k: int):
    """The model's torch path (GenerativeRecommender._top_k_catalogue)."""
    scores, index = torch.topk(states @ table[1:].t(), k, dim=-1)
    return scores, index + 1


def bench_topk(batch, num_items, dim, k, dtype, hbm_gbps, *, sweep: bool) -> list[dict]:
    """Time every provider at one shape; the table is generated on the GPU like the model's (std d^-½)."""
    from genrec_bench.kernels.catalogue_topk import triton as impl

    gen = torch.Generator(device=common.DEVICE).manual_seed(0)
    table = (torch.randn(num_items, dim, device=common.DEVICE, generator=gen) * dim**-0.5).to(dtype)
    # Two state batches over one table: the table (≥ 64 MB at these sizes) is past L2 on every call anyway.
    inputs = [
        (torch.randn(batch, dim, device=common.DEVICE, generator=gen).to(dtype), table) for _ in range(2)
    ]
    compiled = torch.compile(native_topk, dynamic=False)
    providers = {
        "triton": lambda s, t: catalogue_topk(s, t, k, kernel="triton"),
        "torch-eager-native": lambda s, t: native_topk(s, t, k),
        "torch-compile-native": lambda s, t: compiled(s, t, k),
        # Not a top-k: cuBLAS's time for the same FLOPs, writing the logits; a reference point, not checked.
        "torch-matmul-only": lambda s, t: s @ t[1:].t(),
    }
    if sweep:
        for c in impl.SWEEP_CONFIGS:
            cfg = {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages}
            providers["triton-" + "-".join(f"{n}{v}" for n, v in cfg.items())] = lambda s, t, cfg=cfg: (
                impl.catalogue_topk_triton(s, t, k, config=cfg)
            )
    exact: dict[str, str] = {}

    def check(name):
        def run(out, args):
            try:
                check_topk(*out, *args, k, name)
                exact[name] = "exact"
            except AssertionError as exc:
                exact[name] = str(exc).splitlines()[0]
                if name.startswith("triton"):
                    raise

        return run

    checks = {name: check(name) for name in providers if name != "torch-matmul-only"}
    shape = {"B": batch, "N": num_items, "d": dim, "k": k}
    itemsize = table.element_size()
    nbytes = num_items * dim * itemsize + batch * dim * itemsize + batch * k * (itemsize + 8)
    records = run_providers(
        "catalogue_topk",
        providers,
        checks,
        inputs,
        shape=shape,
        dtype=dtype,
        nbytes=nbytes,
        flops=2.0 * batch * num_items * dim,
        hbm_gbps=hbm_gbps,
    )
    for r in records:
        r["exactness"] = exact.get(r["provider"], "not checked")
    note_config(records, impl.catalogue_scan_autotuned)
    return records


def main(argv: list[str] | None = None) -> int:
    """Run the catalogue top-k micro-benchmarks and write one JSON file."""
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.kernel_micro.topk", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--shapes",
        default=None,
        metavar="B:N:d:k:dtype,...",
        help="shapes to run (default: base's, at B=256 and 1, fp16 and bf16, k=100 and 256)",
    )
    parsed = parse(parser, argv)
    if parsed is None:
        return 2
    args, info, hbm = parsed
    spec = args.shapes or (
        "16:100000:128:50:float16"
        if args.quick
        else "256:1000000:256:100:float16,1:1000000:256:100:float16,"
        "256:1000000:256:100:bfloat16,256:1000000:256:256:float16"
    )
    shapes = [
        (int(b), int(n), int(d), int(k), getattr(torch, dt))
        for b, n, d, k, dt in (s.split(":") for s in spec.split(","))
    ]
    records: list[dict] = []
    for i, (batch, items, dim, k, dtype) in enumerate(shapes):
        records += bench_topk(batch, items, dim, k, dtype, hbm["gbps"], sweep=args.sweep and i == 0)
        write(args.json, info, hbm, records)  # after each shape, so a run cut short keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
