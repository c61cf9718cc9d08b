"""Fuzz the Triton HSTU attention kernels (jagged prefill, paged-cache decode) against the fp32 references."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec_bench.kernels import strategies as ks
from genrec_bench.kernels._triton import interpreting
from genrec_bench.kernels.hstu_attention import (
    assert_within_bound,
    hstu_attention,
    hstu_attention_reference,
    hstu_decode_attention,
    hstu_decode_reference,
)

pytest.importorskip("triton")

# On the GPU the same strategies draw longer histories and more heads (cheap there, slow in the interpreter),
# and each dtype is its own test with 400 examples (1200 per kernel): compiles are per dtype and head dim, so
# the nightly run can spread them over processes (`-k float16` ...). The interpreter keeps the profile's
# count.
WIDE = not interpreting()
GPU_EXAMPLES = settings(max_examples=400) if WIDE else settings()
DTYPES = pytest.mark.parametrize("dtype", ks.DTYPES, ids=lambda d: str(d).replace("torch.", ""))


def _prefill_cases(dtype):
    return ks.hstu_cases(
        lengths=ks.jagged_lengths(max_rows=12, max_length=160, max_long_length=600) if WIDE else None,
        max_heads=8 if WIDE else 3,
        head_dims=(16, 24, 32, 64) if WIDE else (8, 16, 24, 32),
        dtypes=ks.dtypes(allowed=(dtype,)),
    )


def _decode_cases(dtype):
    return ks.hstu_decode_cases(
        lengths=ks.jagged_lengths(max_rows=16, max_length=200, max_long_length=700) if WIDE else None,
        max_heads=8 if WIDE else 3,
        head_dims=(16, 24, 32, 64) if WIDE else (8, 16, 24, 32),
        dtypes=ks.dtypes(allowed=(dtype,)),
    )


def _check_prefill(case: ks.HstuCase, got: torch.Tensor, q, k, v, offsets) -> None:
    want = hstu_attention_reference(q, k, v, offsets)
    magnitude = hstu_attention_reference(q, k, v, offsets, magnitude=True)
    assert_within_bound(got, want, magnitude, repr(case))


@DTYPES
@GPU_EXAMPLES
@given(data=st.data())
def test_triton_prefill_matches_reference(dtype, data, device):
    case = data.draw(_prefill_cases(dtype), label="case")
    q, k, v, offsets = case.tensors(device)
    got = hstu_attention(q, k, v, offsets, max_seq_len=case.max_seq_len, kernel="triton")
    _check_prefill(case, got, q, k, v, offsets)


@DTYPES
@GPU_EXAMPLES
@given(data=st.data())
def test_triton_decode_matches_reference_and_appends_in_place(dtype, data, device):
    case = data.draw(_decode_cases(dtype), label="case")
    q, k, v, k_cache, v_cache, lengths = case.tensors(device)
    history = [c.history(case.layer, lengths, max(case.lengths, default=0)) for c in (k_cache, v_cache)]
    before = k_cache.pages.clone()
    got = hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, layer=case.layer, kernel="triton")
    want = hstu_decode_reference(q, k, v, *history, lengths)
    magnitude = hstu_decode_reference(q, k, v, *history, lengths, magnitude=True)
    assert_within_bound(got, want, magnitude, repr(case))
    # The new token's k went to position `length` of this layer and nothing else moved.
    rows = k_cache.rows(lengths.view(-1, 1)).view(-1)
    torch.testing.assert_close(k_cache.pages[case.layer].flatten(0, 1)[rows], k, rtol=0, atol=0)
    before[case.layer].flatten(0, 1)[rows] = k
    assert torch.equal(k_cache.pages, before)
    # Idempotent: a second identical step reads the same history and returns the same answer.
    again = hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, layer=case.layer, kernel="triton")
    assert torch.equal(again, got)


@settings(max_examples=10)
@given(
    case=ks.hstu_cases(
        lengths=ks.jagged_lengths(max_rows=4, max_length=9, max_long_length=14), head_dims=(2, 4), max_heads=2
    )
)
def test_prefill_reference_matches_the_definition(case):
    """The reference itself, against the formula written out per user, query and key."""
    q, k, v, offsets = case.tensors()
    want = torch.zeros(q.shape, dtype=torch.float32)
    for b in range(len(case.lengths)):
        start = int(offsets[b])
        for i in range(case.lengths[b]):
            for j in range(i + 1):
                score = (q[start + i].float() * k[start + j].float()).sum(-1) / case.head_dim**0.5
                want[start + i] += torch.nn.functional.silu(score)[:, None] * v[start + j].float() / (i + 1)
    got = hstu_attention_reference(q, k, v, offsets)
    torch.testing.assert_close(
        got.float(), want, rtol=2e-2 if case.dtype != torch.float32 else 1e-5, atol=1e-2
    )


@settings(max_examples=10)
@given(case=ks.hstu_cases(lengths=ks.jagged_lengths(min_length=1, max_rows=4, max_length=12), max_heads=2))
def test_decode_reference_extends_the_prefill_row(case):
    """Decoding the last token of each history against the rest equals the prefill's last row."""
    q, k, v, offsets = case.tensors()
    prefill = hstu_attention_reference(q, k, v, offsets)
    last = offsets[1:] - 1
    lengths = torch.tensor(case.lengths) - 1
    width = max(case.lengths)
    history = []
    for t in (k, v):
        padded = torch.zeros(len(case.lengths), width, *t.shape[1:], dtype=t.dtype)
        for b, n in enumerate(case.lengths):
            padded[b, : n - 1] = t[int(offsets[b]) : int(offsets[b]) + n - 1]
        history.append(padded)
    got = hstu_decode_reference(q[last], k[last], v[last], *history, lengths)
    torch.testing.assert_close(
        got, prefill[last], rtol=1e-5 if case.dtype == torch.float32 else 1e-2, atol=1e-3
    )


def _configs(module: str):
    import importlib

    impl = importlib.import_module(module)
    return [{**c.kwargs, "num_warps": c.num_warps, "num_stages": c.num_stages} for c in impl.GPU_CONFIGS]


@pytest.mark.parametrize(
    "config",
    _configs("genrec_bench.kernels.hstu_attention.triton"),
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
def test_every_tuned_prefill_config_matches_reference(config, device):
    """Autotune may pick any config on the GPU, so each one is checked (the interpreter runs one
    otherwise)."""
    from genrec_bench.kernels.hstu_attention.triton import hstu_attention_triton

    case = ks.HstuCase(
        (0, 70, 1, 129, 64), heads=2, head_dim=32, dtype=torch.float16, max_seq_len=130, packed=True, seed=3
    )
    q, k, v, offsets = case.tensors(device)
    _check_prefill(
        case, hstu_attention_triton(q, k, v, offsets, max_seq_len=130, config=config), q, k, v, offsets
    )


@pytest.mark.parametrize(
    "config",
    _configs("genrec_bench.kernels.hstu_attention.decode_triton"),
    ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()),
)
@pytest.mark.parametrize("splits", [1, 3])
def test_every_tuned_decode_config_matches_reference(config, splits, device):
    from genrec_bench.kernels.hstu_attention.decode_triton import hstu_decode_triton

    case = ks.HstuDecodeCase(
        (0, 70, 1, 33), heads=2, head_dim=32, dtype=torch.float16, page_size=16, layers=2, layer=1, seed=4
    )
    q, k, v, k_cache, v_cache, lengths = case.tensors(device)
    history = [c.history(1, lengths, 70) for c in (k_cache, v_cache)]
    got = hstu_decode_triton(q, k, v, k_cache, v_cache, lengths, layer=1, splits=splits, config=config)
    want = hstu_decode_reference(q, k, v, *history, lengths)
    assert_within_bound(
        got, want, hstu_decode_reference(q, k, v, *history, lengths, magnitude=True), repr(case)
    )
