"""Fuzz the Triton interaction kernel against the fp32 torch reference (CPU: Triton's interpreter)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels.interaction import interaction, interaction_reference
from genrec_bench.kernels.tolerances import tolerance

pytest.importorskip("triton")


@given(case=ks.interaction_cases())
def test_triton_matches_reference(case, device):
    x, dense = case.tensors(device)
    got = interaction(x, dense=dense, kernel="triton")
    want = interaction(x, dense=dense, kernel="torch")
    assert got.dtype == x.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, **tolerance(case.dtype, terms=case.dim))


@given(ks.interaction_cases(shapes=ks.interaction_shapes(max_batch=3, max_features=12, max_dim=24)))
def test_reference_matches_the_definition(case):
    """The reference itself, against the pairwise dot products written out."""
    x, _ = case.tensors()
    xf = x.float()
    pairs = [(xf[:, i] * xf[:, j]).sum(-1) for i in range(case.features) for j in range(i)]
    want = torch.stack(pairs, 1) if pairs else xf.new_zeros(case.batch, 0)
    torch.testing.assert_close(
        interaction_reference(x), want.to(x.dtype), **tolerance(case.dtype, terms=case.dim)
    )


def _configs():
    from genrec_bench.kernels.interaction import triton as impl

    return [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.GPU_CONFIGS]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("shape", [(5, 27, 128), (3, 33, 20), (1, 2, 1)], ids=str)
def test_every_tuned_config_matches_reference(config, shape, device):
    """Autotune may pick any config on the GPU, so each one is checked (the interpreter runs one
    otherwise)."""
    from genrec_bench.kernels.interaction.triton import interaction_triton

    case = ks.InteractionCase(*shape, dense_dim=2, dtype=torch.float16, seed=0)
    x, dense = case.tensors(device)
    got = interaction_triton(x, dense=dense, config=config)
    want = torch.cat([dense, interaction_reference(x)], 1)
    torch.testing.assert_close(got, want, **tolerance(case.dtype, terms=case.dim))
