"""The strategies: argument validation names argument, value and fix; drawn values respect the bounds."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from genrec_bench.kernels import strategies as ks


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (ks.interaction_shapes, {"min_batch": 5, "max_batch": 2}, "min_batch=5 is larger than max_batch=2"),
        (ks.interaction_shapes, {"min_features": 0}, "min_features=0 is smaller than 1"),
        (ks.interaction_shapes, {"max_dim": 2.5}, "max_dim=2.5 must be an int"),
        (ks.interaction_shapes, {"min_dim": True}, "min_dim=True must be an int"),
        (ks.jagged_lengths, {"min_rows": 4, "max_rows": 3}, "min_rows=4 is larger than max_rows=3"),
        (ks.jagged_lengths, {"min_length": -1}, "min_length=-1 is smaller than 0"),
        (
            ks.jagged_lengths,
            {"max_length": 10, "max_long_length": 5},
            "max_length=10 is larger than max_long_length=5",
        ),
        (ks.jagged_cases, {"min_items": 0}, "min_items=0 is smaller than 1"),
        (ks.jagged_cases, {"modes": ("max",)}, "modes=('max',)"),
        (ks.interaction_cases, {"min_dense_dim": 3, "max_dense_dim": 1}, "min_dense_dim=3 is larger"),
        (ks.dtypes, {"allowed": ()}, "allowed=() is empty"),
        (ks.dtypes, {"allowed": (torch.int64,)}, "torch.int64"),
    ],
)
def test_invalid_arguments_name_argument_value_and_fix(factory, kwargs, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        factory(**kwargs)


def test_min_larger_than_max_says_how_to_fix():
    with pytest.raises(InvalidArgument, match="pass min_rows<=max_rows"):
        ks.jagged_lengths(min_rows=9, max_rows=1)


def test_strategy_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        ks.jagged_lengths(1, 2)  # type: ignore[misc]


@settings(max_examples=50)
@given(ks.jagged_lengths(min_rows=2, max_rows=5, min_length=1, max_length=4, max_long_length=30))
def test_jagged_lengths_respect_bounds(lengths):
    assert 2 <= len(lengths) <= 5
    assert all(1 <= n <= 30 for n in lengths)
    assert sum(n > 4 for n in lengths) <= 1  # at most the one long row exceeds max_length


def _found(strategy, condition) -> bool:
    from hypothesis import find

    find(strategy, condition, settings=settings(max_examples=500, database=None))
    return True


def test_jagged_lengths_cover_the_awkward_batches():
    lengths = ks.jagged_lengths(min_rows=3, max_rows=8, max_length=8, max_long_length=200)
    assert _found(lengths, lambda ls: len(ls) >= 3 and 0 in ls and any(n > 0 for n in ls))
    assert _found(lengths, lambda ls: len(ls) >= 3 and len(set(ls)) == 1 and ls[0] > 0)
    assert _found(lengths, lambda ls: max(ls) >= 100)


@settings(max_examples=20)
@given(ks.interaction_cases(), ks.jagged_cases())
def test_case_tensors_replay_from_the_seed(icase, jcase):
    x1, d1 = icase.tensors()
    x2, d2 = icase.tensors()
    assert x1.shape == (icase.batch, icase.features, icase.dim) and x1.dtype == icase.dtype
    assert torch.equal(x1, x2) and (d1 is None) == (icase.dense_dim == 0)
    assert (d1 is None and d2 is None) or torch.equal(d1, d2)
    values, offsets, table = jcase.tensors()
    assert offsets[0] == 0 and offsets[-1] == values.numel() == sum(jcase.lengths)
    assert table.shape == (jcase.num_items, jcase.dim)
    assert values.numel() == 0 or (0 <= int(values.min()) and int(values.max()) < jcase.num_items)
    assert torch.equal(values, jcase.tensors()[0])


@given(st.data())
def test_dtypes_draw_only_allowed(data):
    assert data.draw(ks.dtypes(allowed=(torch.float16,))) is torch.float16
