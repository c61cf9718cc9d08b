"""Fuzz the Triton catalogue top-k against the fp32 reference: exact up to ties at the k-th score."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels._triton import interpreting
from genrec_bench.kernels.catalogue_topk import MAX_K, catalogue_topk, catalogue_topk_reference, check_topk

pytest.importorskip("triton")

# On the GPU the same strategy draws catalogues of thousands of items and k up to the kernel's limit, at two
# embedding widths (each compile of the kernel takes seconds; widths masked along d are fuzzed in the
# interpreter and run on the GPU in the tuned-config and model tests), and each dtype is its own test with 400
# examples (1200 in all) so the nightly run can spread the compiles over processes. The interpreter keeps the
# profile's count.
WIDE = not interpreting()
GPU_EXAMPLES = settings(max_examples=400) if WIDE else settings()
DTYPES = pytest.mark.parametrize("dtype", ks.DTYPES, ids=lambda d: str(d).replace("torch.", ""))


def _check_ties_go_to_lower_ids(items: torch.Tensor, table: torch.Tensor, what: str) -> None:
    """Rows equal to table row 1 score exactly alike, so a stable order returns the lowest ids of them
    first."""
    same = (table[1:] == table[1]).all(1).nonzero().flatten().cpu() + 1  # ascending item ids
    for row in items.cpu():
        got = row[torch.isin(row, same)]
        assert torch.equal(got, same[: got.numel()]), (
            f"{what} tied items {got.tolist()} are not the lowest ids"
        )


def _cases(dtype):
    if WIDE:
        return ks.catalogue_cases(
            max_batch=40, max_items=5000, dims=(64, 256), max_k=MAX_K, dtypes=ks.dtypes(allowed=(dtype,))
        )
    return ks.catalogue_cases(dtypes=ks.dtypes(allowed=(dtype,)))


@DTYPES
@GPU_EXAMPLES
@given(data=st.data())
def test_triton_is_an_exact_top_k(dtype, data, device):
    case = data.draw(_cases(dtype), label="case")
    states, table = case.tensors(device)
    scores, items = catalogue_topk(states, table, case.k, kernel="triton")
    check_topk(scores, items, states, table, case.k, repr(case))
    _check_ties_go_to_lower_ids(items, table, repr(case))


@given(case=ks.catalogue_cases(max_items=60, max_dim=8, max_k=8))
def test_reference_is_an_exact_top_k(case):
    """The reference itself, against a sort of every item's score written out one by one."""
    states, table = case.tensors()
    scores, items = catalogue_topk_reference(states, table, case.k)
    check_topk(scores, items, states, table, case.k, repr(case))
    for row in range(case.batch):
        every = sorted(
            ((float((states[row].float() * table[i].float()).sum()), i) for i in range(1, case.num_items)),
            reverse=True,
        )
        kth = every[case.k - 1][0]
        assert {i for s, i in every if s > kth + 1e-4} <= set(items[row].tolist())


@settings(max_examples=5)
@given(case=ks.catalogue_cases(min_items=40, max_items=120, dims=(48,), max_k=30))
def test_all_items_tied_still_returns_k_distinct_ids(case, device):
    """Every row of the table the same: every item ties, and every chunk's second best does too."""
    states, table = case.tensors(device)
    table[1:] = table[1]
    scores, items = catalogue_topk(states, table, case.k, kernel="triton")
    check_topk(scores, items, states, table, case.k, repr(case))
    assert torch.equal(items.cpu(), torch.arange(1, case.k + 1).expand(case.batch, -1))  # in id order too


def _planted(batch: int, items: int, dim: int, ids: torch.Tensor, dtype, device, seed: int = 0):
    """Random states and table whose items ``ids`` beat every other item in every row, in the order given."""
    gen = torch.Generator().manual_seed(seed)
    states = torch.randn(batch, dim, generator=gen).abs() + 0.5
    table = torch.randn(items, dim, generator=gen) * 0.1
    table[ids] = torch.linspace(4.0, 2.0, ids.numel())[:, None].expand(-1, dim)  # positive states: best first
    return states.to(device=device, dtype=dtype), table.to(device=device, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["float16", "float32"])
def test_top_k_inside_one_chunk_is_rescored(dtype, device):
    """All of the top k in the first chunk: all but its best must come from the finish's rescoring."""
    from genrec_bench.kernels.catalogue_topk import triton as impl

    k = min(impl.CHUNK - 1, 20)
    ids = torch.arange(2, 2 + k).flip(0)  # item 2 + k - 1 best, ..., item 2
    states, table = _planted(3, 12 * impl.CHUNK + 5, 24, ids, dtype, device)
    scores, items = catalogue_topk(states, table, k, kernel="triton")
    check_topk(scores, items, states, table, k)
    assert torch.equal(items.cpu(), ids.expand(3, -1))


def test_top_k_over_one_group_is_reread(device):
    """The top k one per chunk in consecutive chunks: a group keeps R of them, the finish rereads the rest."""
    from genrec_bench.kernels.catalogue_topk import triton as impl

    chunks = 4 * impl.TARGET_GROUPS * (impl.RANK + 2)  # groups of ≥ R + 2 chunks
    k = min(impl.RANK + 2, 16)
    ids = 1 + impl.CHUNK * torch.arange(k)  # the first item of chunks 0..k-1: all in group 0
    states, table = _planted(2, chunks * impl.CHUNK + 1, 16, ids, torch.float16, device)
    scores, items = catalogue_topk(states, table, k, kernel="triton")
    check_topk(scores, items, states, table, k)
    assert torch.equal(items.cpu(), ids.expand(2, -1))


@settings(max_examples=5)
@given(case=ks.catalogue_cases(min_batch=1, max_batch=1, min_items=100, max_items=200, max_k=64))
def test_one_row_with_most_items_tied(case, device):
    """B = 1, nearly every item a copy of row 1 (ties across chunks and groups, k up to N − 1)."""
    states, table = case.tensors(device)
    table[2:-1] = table[1]
    scores, items = catalogue_topk(states, table, case.k, kernel="triton")
    check_topk(scores, items, states, table, case.k, repr(case))
    _check_ties_go_to_lower_ids(items, table, repr(case))


def _configs():
    from genrec_bench.kernels.catalogue_topk import triton as impl

    return [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.GPU_CONFIGS]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_every_tuned_config_is_exact(config, device):
    """Autotune may pick any config on the GPU, so each one is checked (the interpreter runs one
    otherwise)."""
    from genrec_bench.kernels.catalogue_topk.triton import catalogue_topk_triton

    case = ks.CatalogueCase(batch=3, num_items=700, dim=48, k=100, dtype=torch.float16, duplicates=30, seed=5)
    states, table = case.tensors(device)
    scores, items = catalogue_topk_triton(states, table, case.k, config=config)
    check_topk(scores, items, states, table, case.k, repr(case))
    _check_ties_go_to_lower_ids(items, table, repr(case))


@pytest.mark.skipif(
    not interpreting(), reason="the network sorts only in the interpreter; the GPU uses tl.sort"
)
@settings(max_examples=10)
@given(rows_log=st.integers(0, 2), n_log=st.integers(0, 6), seed=ks.seeds())
def test_interpreter_sorting_network_sorts_and_merges(rows_log, n_log, seed, device):
    """The network the interpreter sorts with in place of tl.sort (kernels/catalogue_topk/bitonic.py)."""
    from genrec_bench.kernels.catalogue_topk.bitonic import sort_rows_kernel as kernel

    rows, n = 2**rows_log, 2**n_log
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-(2**62), 2**62, (rows, n), generator=gen)
    x[:, : n // 2] = x[:, :1]  # ties
    got = x.clone().to(device)
    kernel[(1,)](got, rows, n, n_log, False)
    assert torch.equal(got.cpu(), x.sort(1, descending=True).values)
    a = x.sort(1, descending=True).values
    b = torch.randint(-(2**62), 2**62, (rows, n), generator=gen).sort(1).values
    got = torch.maximum(a, b).to(device)
    kernel[(1,)](got, rows, n, n_log, True)
    assert torch.equal(got.cpu(), torch.cat([a, b], 1).sort(1, descending=True).values[:, :n])
