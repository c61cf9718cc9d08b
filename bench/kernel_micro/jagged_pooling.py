"""Micro-benchmark of jagged embedding-bag pooling: the Triton kernel, the fp32 reference eager and compiled,
and torch's embedding_bag."""

from __future__ import annotations

import torch

from genrec_bench.bench.kernel_micro import common
from genrec_bench.bench.kernel_micro.common import note_config, reference_check, run_providers
from genrec_bench.kernels.jagged_pooling import jagged_pooling, jagged_pooling_reference


def _jagged_inputs(batch, mean_length, dim, items, dtype, seed):
    gen = torch.Generator(device=common.DEVICE).manual_seed(seed)
    # Lengths uniform in [0, 2·mean]: jagged, with empty rows, averaging mean_length.
    lengths = torch.randint(0, 2 * mean_length + 1, (batch,), device=common.DEVICE, generator=gen)
    offsets = torch.zeros(batch + 1, dtype=torch.int64, device=common.DEVICE)
    offsets[1:] = torch.cumsum(lengths, 0)
    values = torch.randint(0, items, (int(offsets[-1]),), device=common.DEVICE, generator=gen)
    return values, offsets


def bench_jagged(batch, mean_length, dim, items, dtype, mode, hbm_gbps, *, sweep: bool) -> list[dict]:
    """Time every jagged pooling provider at one shape; ids uniform over a table far larger than L2."""
    from genrec_bench.kernels.jagged_pooling import triton as impl

    table = torch.randn(items, dim, device=common.DEVICE).to(dtype)
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
            v, t, o[:-1], mode=mode, include_last_offset=False
        ),
    }
    if sweep:
        for c in impl.SWEEP_CONFIGS:
            cfg = {**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages}
            name = "triton-" + "-".join(f"{k}{v}" for k, v in cfg.items())
            providers[name] = lambda v, o, t, cfg=cfg: impl.jagged_pooling_triton(
                v, o, t, mode=mode, config=cfg
            )
    check = reference_check(jagged_pooling_reference(*inputs[0], mode=mode), dtype, terms=2 * mean_length)
    checks = dict.fromkeys(providers, check)  # the compiled fp32 reference too: inductor may differ
    records = run_providers(
        "jagged_pooling",
        providers,
        checks,
        inputs,
        shape=shape,
        dtype=dtype,
        nbytes=nbytes,
        hbm_gbps=hbm_gbps,
    )
    note_config(records, impl.jagged_pooling_autotuned)
    return records
