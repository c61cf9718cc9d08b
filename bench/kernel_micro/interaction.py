"""Micro-benchmark of the DLRM dot interaction: the Triton kernel, the fp32 reference eager and compiled, and
the usual hand-written bmm + gather."""

from __future__ import annotations

import torch

from genrec_bench.bench.kernel_micro import common
from genrec_bench.bench.kernel_micro.common import copies, note_config, reference_check, run_providers
from genrec_bench.kernels.interaction import interaction, interaction_reference, tril_flat_index


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
    gen = torch.Generator(device=common.DEVICE).manual_seed(0)
    inputs = copies(
        lambda i: (torch.randn(batch, features, dim, device=common.DEVICE, generator=gen).to(dtype),),
        batch * features * dim * itemsize,
    )
    index = tril_flat_index(features, device=common.DEVICE)
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
    check = reference_check(interaction_reference(inputs[0][0]), dtype, terms=dim)
    checks = dict.fromkeys(providers, check)  # the compiled fp32 reference too: inductor may differ
    records = run_providers(
        "interaction", providers, checks, inputs, shape=shape, dtype=dtype, nbytes=nbytes, hbm_gbps=hbm_gbps
    )
    note_config(records, impl.interaction_autotuned)
    return records
