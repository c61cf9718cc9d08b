"""Fuzz the Triton catalogue top-k against the fp32 reference: exact up to ties at the k-th score."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from kernels import strategies as ks
from kernels._triton import interpreting
from kernels.catalogue_topk import MAX_K, catalogue_topk, catalogue_topk_reference, check_topk

pytest.importorskip("triton")

# On the GPU the same strategy draws catalogues of thousands of items and k up to the kernel's limit.
WIDE = not interpreting()
CASES = ks.catalogue_cases(max_batch=40 if WIDE else 5, max_items=5000 if WIDE else 200,
                           max_dim=300 if WIDE else 40, max_k=MAX_K if WIDE else 64)


@given(case=CASES)
def test_triton_is_an_exact_top_k(case, device):
    states, table = case.tensors(device)
    scores, items = catalogue_topk(states, table, case.k, kernel="triton")
    check_topk(scores, items, states, table, case.k, repr(case))


@given(case=ks.catalogue_cases(max_items=60, max_dim=8, max_k=8))
def test_reference_is_an_exact_top_k(case):
    """The reference itself, against a sort of every item's score written out one by one."""
    states, table = case.tensors()
    scores, items = catalogue_topk_reference(states, table, case.k)
    check_topk(scores, items, states, table, case.k, repr(case))
    for row in range(case.batch):
        every = sorted(((float((states[row].float() * table[i].float()).sum()), i)
                        for i in range(1, case.num_items)), reverse=True)
        kth = every[case.k - 1][0]
        assert {i for s, i in every if s > kth + 1e-4} <= set(items[row].tolist())


@settings(max_examples=5)
@given(case=ks.catalogue_cases(min_items=40, max_items=120, max_k=30))
def test_all_items_tied_still_returns_k_distinct_ids(case, device):
    """Every row of the table the same: every item ties, the compaction runs on every tile."""
    states, table = case.tensors(device)
    table[1:] = table[1]
    scores, items = catalogue_topk(states, table, case.k, kernel="triton")
    check_topk(scores, items, states, table, case.k, repr(case))
    assert torch.equal(items.sort(1).values.cpu(), torch.arange(1, case.k + 1).expand(case.batch, -1))


def _configs():
    from kernels.catalogue_topk import triton as impl

    return [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.GPU_CONFIGS]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_every_tuned_config_is_exact(config, device):
    """Autotune may pick any config on the GPU, so each one is checked (the interpreter runs one otherwise)."""
    from kernels.catalogue_topk.triton import catalogue_topk_triton

    case = ks.CatalogueCase(batch=3, num_items=700, dim=70, k=100, dtype=torch.float16, duplicates=30, seed=5)
    states, table = case.tensors(device)
    scores, items = catalogue_topk_triton(states, table, case.k, config=config)
    check_topk(scores, items, states, table, case.k, repr(case))
