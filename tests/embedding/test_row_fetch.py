"""The masked row fetch: the Triton kernel (Triton's interpreter on CPU) against the torch reference, and its
argument checks. The zero-copy read of pinned host memory by a GPU is checked in test_embedding_gpu.py."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from genrec_bench.kernels import kernel_availability
from genrec_bench.kernels.row_fetch import default_kernel, fetch_rows

TRITON_OK, TRITON_WHY = kernel_availability("triton", "cpu")


def case(seed: int, rows: int, dim: int, n: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(rows, dim, generator=gen).to(dtype)
    ids = torch.randint(0, rows, (n,), generator=gen)
    mask = torch.rand(n, generator=gen) < 0.5
    dest_index = torch.randperm(n + 3, generator=gen)[:n]  # distinct destinations
    return table, ids, mask, dest_index


@pytest.mark.skipif(not TRITON_OK, reason=TRITON_WHY)
@given(
    seed=st.integers(0, 2**31 - 1),
    rows=st.integers(1, 40),
    dim=st.sampled_from([1, 5, 32, 130]),
    n=st.integers(1, 40),
    dtype=st.sampled_from([torch.float32, torch.float16]),
)
def test_triton_fetch_equals_the_reference(seed, rows, dim, n, dtype):
    table, ids, mask, dest_index = case(seed, rows, dim, n, dtype)
    want, got = torch.full((n + 3, dim), -1.0).to(dtype), torch.full((n + 3, dim), -1.0).to(dtype)
    fetch_rows(want, dest_index, table, ids, mask, kernel="torch")
    fetch_rows(got, dest_index, table, ids, mask, kernel="triton")
    assert torch.equal(want, got)
    untouched = torch.ones(n + 3, dtype=torch.bool)
    untouched[dest_index[mask]] = False
    assert bool((got[untouched] == -1).all())  # rows the mask leaves alone are not written


def test_the_reference_copies_only_masked_rows():
    table = torch.arange(12.0).view(6, 2)
    dest = torch.zeros(4, 2)
    fetch_rows(
        dest,
        torch.tensor([3, 0, 1]),
        table,
        torch.tensor([5, 1, 2]),
        torch.tensor([True, False, True]),
        kernel="torch",
    )
    assert dest.tolist() == [[0, 0], [4, 5], [0, 0], [10, 11]]


def test_bad_arguments_are_one_clear_error():
    table, ids, mask, dest_index = case(0, 8, 4, 5)
    with pytest.raises(ValueError, match="unknown kernel='cuda'"):
        fetch_rows(torch.zeros(8, 4), dest_index, table, ids, mask, kernel="cuda")
    with pytest.raises(ValueError, match="of one dtype"):
        fetch_rows(torch.zeros(8, 4, dtype=torch.float16), dest_index, table, ids, mask)
    with pytest.raises(ValueError, match=r"must be \[N\] alike"):
        fetch_rows(torch.zeros(8, 4), dest_index[:2], table, ids, mask)
    assert default_kernel(torch.zeros(1, 1)) == "torch"
