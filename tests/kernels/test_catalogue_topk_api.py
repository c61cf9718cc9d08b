"""Catalogue top-k dispatch: unknown kernels and bad inputs raise; the exactness check catches wrong answers;
the strategy's argument checks."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels._triton import TritonUnavailable
from genrec_bench.kernels.catalogue_topk import KERNELS, MAX_K, catalogue_topk, check_topk


def _inputs(items: int = 50):
    case = ks.CatalogueCase(batch=3, num_items=items, dim=8, k=5, dtype=torch.float32, duplicates=0, seed=1)
    return case.tensors()


def test_kernel_choices():
    assert KERNELS == ("torch", "triton")


@pytest.mark.parametrize("kernel", ["cuda", "Triton", "", None])
def test_unknown_kernel_raises_naming_value_and_choices(kernel):
    with pytest.raises(
        ValueError, match=r"catalogue_topk \| unknown kernel=.*choose one of \('torch', 'triton'\)"
    ):
        catalogue_topk(*_inputs(), 5, kernel=kernel)


@pytest.mark.parametrize("k", [0, 50, MAX_K + 1, 2.0, True])
def test_k_outside_the_catalogue_raises(k):
    states, table = _inputs(items=MAX_K + 10) if k == MAX_K + 1 else _inputs()
    with pytest.raises(ValueError, match=f"k={k!r} must be an int in 1"):
        catalogue_topk(states, table, k)


def test_bad_inputs_raise():
    states, table = _inputs()
    with pytest.raises(ValueError, match=r"want states \[B, d\] and table \[N, d\]"):
        catalogue_topk(states, table[:, :4], 5)
    with pytest.raises(ValueError, match="must share one of"):
        catalogue_topk(states.half(), table, 5)


def test_missing_triton_is_reported_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)
    with pytest.raises(TritonUnavailable, match="needs the 'triton' package"):
        catalogue_topk(*_inputs(), 5, kernel="triton")


def test_padding_row_is_never_returned():
    states, table = _inputs()
    table[0] = 100.0  # would win every row if it were scored
    _, items = catalogue_topk(states.abs(), table, 5)
    assert bool((items > 0).all())


def test_check_topk_catches_wrong_answers():
    states, table = _inputs()
    scores, items = catalogue_topk(states, table, 5)
    check_topk(scores, items, states, table, 5)
    with pytest.raises(AssertionError, match="returned twice"):
        check_topk(scores, torch.cat([items[:, :1], items[:, :4]], 1), states, table, 5)
    worse = items.clone()
    worse[:, -1] = catalogue_topk(states, table, 6)[1][:, -1]  # the 6th best instead of the 5th
    with pytest.raises(AssertionError, match="(missing|below the k-th|returned with score)"):
        check_topk(scores, worse, states, table, 5)
    with pytest.raises(AssertionError, match="returned with score"):
        check_topk(scores + 1, items, states, table, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_items": 1}, "min_items=1 is smaller than 2"),
        ({"min_batch": 4, "max_batch": 2}, "min_batch=4 is larger than max_batch=2"),
        ({"max_k": 0}, "max_k=0 is smaller than 1"),
        ({"max_dim": 1.5}, "max_dim=1.5 must be an int"),
    ],
)
def test_strategy_arguments_name_argument_value_and_fix(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        ks.catalogue_cases(**kwargs)


@settings(max_examples=30)
@given(ks.catalogue_cases())
def test_cases_respect_their_bounds(case):
    states, table = case.tensors()
    assert states.shape == (case.batch, case.dim) and table.shape == (case.num_items, case.dim)
    assert 1 <= case.k <= case.num_items - 1
    tied = int((table[2:] == table[1]).all(1).sum())
    assert tied >= case.duplicates and torch.equal(table, case.tensors()[1])
