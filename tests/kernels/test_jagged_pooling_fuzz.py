"""Fuzz the Triton jagged pooling kernel against the fp32 torch reference (CPU: Triton's interpreter)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels.jagged_pooling import jagged_pooling, jagged_pooling_reference
from genrec_bench.kernels.tolerances import tolerance

pytest.importorskip("triton")


def _terms(case: ks.JaggedCase) -> int:
    return max(case.lengths, default=1)


@given(case=ks.jagged_cases())
def test_triton_matches_reference(case, device):
    values, offsets, table = case.tensors(device)
    got = jagged_pooling(values, offsets, table, mode=case.mode, kernel="triton")
    want = jagged_pooling(values, offsets, table, mode=case.mode, kernel="torch")
    assert got.dtype == table.dtype and got.shape == (len(case.lengths), case.dim)
    torch.testing.assert_close(got, want, **tolerance(case.dtype, terms=_terms(case)))


@given(ks.jagged_cases(lengths=ks.jagged_lengths(max_rows=6, max_length=6, max_long_length=20)))
def test_reference_matches_the_definition(case):
    """The reference itself, against a Python loop over rows."""
    values, offsets, table = case.tensors()
    rows = []
    for b in range(len(case.lengths)):
        part = table[values[offsets[b] : offsets[b + 1]]].float()
        total = part.sum(0)
        rows.append(total / max(part.shape[0], 1) if case.mode == "mean" else total)
    want = torch.stack(rows).to(case.dtype) if rows else table.new_zeros(0, case.dim)
    got = jagged_pooling_reference(values, offsets, table, mode=case.mode)
    torch.testing.assert_close(got, want, **tolerance(case.dtype, terms=_terms(case)))


def _configs():
    from genrec_bench.kernels.jagged_pooling import triton as impl

    return [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.GPU_CONFIGS]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("lengths", [(0, 70, 1, 0), (16,) * 5, (0,)], ids=lambda ls: f"rows{len(ls)}")
def test_every_tuned_config_matches_reference(config, lengths, device):
    """Autotune may pick any config on the GPU, so each one is checked (the interpreter runs one
    otherwise)."""
    from genrec_bench.kernels.jagged_pooling.triton import jagged_pooling_triton

    for mode in ("sum", "mean"):
        case = ks.JaggedCase(lengths, num_items=50, dim=130, dtype=torch.float32, mode=mode, seed=1)
        values, offsets, table = case.tensors(device)
        got = jagged_pooling_triton(values, offsets, table, mode=mode, config=config)
        want = jagged_pooling_reference(values, offsets, table, mode=mode)
        torch.testing.assert_close(got, want, **tolerance(case.dtype, terms=_terms(case)))
