"""HSTU attention dispatch and cache: unknown kernels and bad inputs raise, the paged cache's layout and
arguments, the strategies' argument checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels._triton import TritonUnavailable
from genrec_bench.kernels.hstu_attention import (
    KERNELS,
    PagedCache,
    allocate_page_table,
    hstu_attention,
    hstu_decode_attention,
    paged_caches_from_jagged,
)


def _prefill_inputs():
    return (*(torch.randn(5, 2, 8) for _ in range(3)), torch.tensor([0, 2, 5]))


def _decode_inputs():
    case = ks.HstuDecodeCase(
        (3, 0), heads=2, head_dim=8, dtype=torch.float32, page_size=2, layers=2, layer=1, seed=0
    )
    return case.tensors()


def test_kernel_choices():
    assert KERNELS == ("torch", "triton")


@pytest.mark.parametrize("kernel", ["cuda", "Triton", "", None])
def test_unknown_kernel_raises_naming_value_and_choices(kernel):
    with pytest.raises(
        ValueError, match=r"hstu_attention \| unknown kernel=.*choose one of \('torch', 'triton'\)"
    ):
        hstu_attention(*_prefill_inputs(), kernel=kernel)
    with pytest.raises(ValueError, match=r"hstu_decode_attention \| unknown kernel=.*choose one of"):
        hstu_decode_attention(*_decode_inputs(), kernel=kernel)


def test_bad_inputs_raise():
    q, k, v, offsets = _prefill_inputs()
    with pytest.raises(ValueError, match="must share one shape"):
        hstu_attention(q, k[:4], v, offsets)
    with pytest.raises(ValueError, match="must share one of"):
        hstu_attention(q, k.half(), v, offsets)
    with pytest.raises(ValueError, match=r"offsets must be \[B\+1\] int32/int64"):
        hstu_attention(q, k, v, offsets.float())
    q, k, v, k_cache, v_cache, lengths = _decode_inputs()
    with pytest.raises(ValueError, match="layer=2 is outside the cache's 2 layers"):
        hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, layer=2)
    with pytest.raises(ValueError, match="caches must be"):
        hstu_decode_attention(q, k, v, k_cache.to(torch.float16), v_cache, lengths)
    with pytest.raises(ValueError, match="must match B=2"):
        hstu_decode_attention(q, k, v, k_cache, v_cache, lengths[:1])


def test_missing_triton_is_reported_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)
    with pytest.raises(TritonUnavailable, match="needs the 'triton' package"):
        hstu_attention(*_prefill_inputs(), kernel="triton")
    with pytest.raises(TritonUnavailable, match="needs the 'triton' package"):
        hstu_decode_attention(*_decode_inputs(), kernel="triton")


def test_importing_the_ops_does_not_import_triton():
    code = (
        "import sys, kernels.hstu_attention, kernels.catalogue_topk;"
        "sys.exit(1 if 'triton' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_page_table_gives_each_user_room_for_the_next_token():
    table, pages = allocate_page_table(torch.tensor([0, 3, 4, 9]), page_size=4, width=12)
    assert pages == 1 + 1 + 2 + 3
    assert table.tolist() == [[0, -1, -1], [1, -1, -1], [2, 3, -1], [4, 5, 6]]
    with pytest.raises(ValueError, match="pass a width of at least 10"):
        allocate_page_table(torch.tensor([9]), page_size=4, width=8)
    with pytest.raises(ValueError, match="page_size=3 must be a power of two"):
        allocate_page_table(torch.tensor([9]), page_size=3, width=16)


def test_cache_holds_each_position_where_the_table_says():
    lengths = torch.tensor([3, 0, 5])
    offsets = torch.tensor([0, 3, 3, 8])
    keys = [torch.arange(8.0).view(8, 1, 1) + 100 * layer for layer in range(2)]
    k_cache, v_cache = paged_caches_from_jagged(keys, keys, offsets, lengths, page_size=2, width=6)
    assert isinstance(k_cache, PagedCache) and k_cache.page_size == 2
    assert k_cache.page_table is v_cache.page_table
    history = k_cache.history(1, lengths, 5).view(3, 5)
    assert history.tolist() == [[100, 101, 102, 0, 0], [0] * 5, [103, 104, 105, 106, 107]]
    assert k_cache.to(torch.float16).pages.dtype == torch.float16


def test_reference_decode_appends_and_is_idempotent():
    q, k, v, k_cache, v_cache, lengths = _decode_inputs()
    first = hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, layer=1)
    pages = k_cache.pages.clone()
    assert torch.equal(hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, layer=1), first)
    assert torch.equal(k_cache.pages, pages)
    rows = k_cache.rows(lengths.view(-1, 1)).view(-1)
    assert torch.equal(k_cache.pages[1].flatten(0, 1)[rows], k)


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (ks.hstu_cases, {"min_heads": 3, "max_heads": 2}, "min_heads=3 is larger than max_heads=2"),
        (ks.hstu_cases, {"head_dims": ()}, "head_dims=() must be a non-empty tuple"),
        (ks.hstu_cases, {"max_extra_length": -1}, "max_extra_length=-1 is smaller than 0"),
        (
            ks.hstu_decode_cases,
            {"page_sizes": (3,)},
            "page_sizes=(3,) must be a non-empty tuple of powers of two",
        ),
        (ks.hstu_decode_cases, {"max_layers": 0}, "max_layers=0 is smaller than 1"),
    ],
)
def test_strategy_arguments_name_argument_value_and_fix(factory, kwargs, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        factory(**kwargs)


@settings(max_examples=20)
@given(ks.hstu_cases(), ks.hstu_decode_cases())
def test_cases_replay_from_their_seed_and_respect_their_shapes(prefill, decode):
    q, k, v, offsets = prefill.tensors()
    assert q.shape == (sum(prefill.lengths), prefill.heads, prefill.head_dim) and q.dtype == prefill.dtype
    assert prefill.max_seq_len >= max(prefill.lengths, default=0)
    assert torch.equal(q, prefill.tensors()[0]) and int(offsets[-1]) == q.shape[0]
    q, k, v, k_cache, v_cache, lengths = decode.tensors()
    assert q.shape == (len(decode.lengths), decode.heads, decode.head_dim)
    assert k_cache.pages.shape[0] == decode.layers and k_cache.page_size == decode.page_size
    assert torch.equal(k_cache.pages, decode.tensors()[3].pages)
