"""HSTU attention (pointwise SiLU attention, divided by the visible positions) over jagged histories.

Two ops, each with one entry point taking ``kernel=``:

- ``hstu_attention(q, k, v, offsets, ...)``: causal attention of every token of every user (prefill);
- ``hstu_decode_attention(q, k, v, k_cache, v_cache, lengths, ...)``: one new token per user against its
  history in a paged KV cache (``paged_cache.py``), appending the token's k/v in place.
"""

from __future__ import annotations

import torch

from .. import KERNELS, check_kernel, count_dispatch
from .paged_cache import DEFAULT_PAGE_SIZE, PagedCache, allocate_page_table, paged_caches_from_jagged
from .reference import (
    allowed_error,
    assert_within_bound,
    hstu_attention_reference,
    hstu_decode_reference,
    jagged_positions,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "KERNELS",
    "PagedCache",
    "allocate_page_table",
    "allowed_error",
    "assert_within_bound",
    "hstu_attention",
    "hstu_attention_reference",
    "hstu_decode_attention",
    "hstu_decode_reference",
    "jagged_positions",
    "paged_caches_from_jagged",
]

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _check_qkv(op: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 3 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            f"{op} | q, k, v must share one shape [rows, H, dh], but got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.dtype not in _FLOAT_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(
            f"{op} | q, k, v must share one of {_FLOAT_DTYPES}, but got {q.dtype}, {k.dtype}, {v.dtype}"
        )


def hstu_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    offsets: torch.Tensor,
    *,
    max_seq_len: int | None = None,
    kernel: str = "torch",
) -> torch.Tensor:
    """Causal HSTU attention: out_i = Σ_{j ≤ i} SiLU(q_i·k_j / √dh) v_j / (i + 1) within each user.

    q, k, v: jagged [T, H, dh] (any strides with a contiguous last dim, e.g. views into one projection);
    offsets: [B+1] int32/int64, user b owns rows offsets[b]:offsets[b+1]. Returns a new contiguous
    [T, H, dh] in q.dtype. Rows at or past offsets[-1] belong to no user: the reference writes 0 there, the
    Triton kernel leaves them unwritten. ``max_seq_len`` (≥ the longest row) sizes the Triton grid without
    reading offsets on the host; when None it is read from offsets (one device sync).
    ``kernel`` is one of ``kernels.KERNELS``; any other value raises ValueError.
    """
    check_kernel("hstu_attention", kernel)
    _check_qkv("hstu_attention", q, k, v)
    if offsets.dim() != 1 or offsets.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"hstu_attention | offsets must be [B+1] int32/int64, but got "
            f"{tuple(offsets.shape)} {offsets.dtype}"
        )
    count_dispatch("hstu_attention", kernel)  # counted where the branch is taken: what really runs
    if kernel == "torch":
        return hstu_attention_reference(q, k, v, offsets)
    if max_seq_len is None:
        max_seq_len = int((offsets[1:] - offsets[:-1]).max()) if offsets.numel() > 1 else 0
    from .._triton import load_triton_module

    impl = load_triton_module("hstu_attention", f"{__name__}.triton")
    return impl.hstu_attention_triton(q, k, v, offsets, max_seq_len=max_seq_len)


def hstu_decode_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: PagedCache,
    v_cache: PagedCache,
    lengths: torch.Tensor,
    *,
    layer: int = 0,
    kernel: str = "torch",
) -> torch.Tensor:
    """One decode step of HSTU attention on a paged KV cache, for layer ``layer``.

    q, k, v: [B, H, dh], user b's new token at position lengths[b]. Writes k, v into the caches at that
    position (the history is never copied), then returns [B, H, dh] in q.dtype:
    Σ_{j < lengths[b]} SiLU(q·k_j / √dh) v_j + SiLU(q·k / √dh) v, all / (lengths[b] + 1).
    The caches (see ``paged_cache.py``) must have a page for position lengths[b]; they are not checked on the
    device. ``kernel`` is one of ``kernels.KERNELS``; any other value raises ValueError.
    """
    check_kernel("hstu_decode_attention", kernel)
    _check_qkv("hstu_decode_attention", q, k, v)
    pages = k_cache.pages
    if (
        pages.dim() != 5
        or v_cache.pages.shape != pages.shape
        or tuple(pages.shape[3:]) != tuple(q.shape[1:])
        or pages.dtype != q.dtype
        or v_cache.pages.dtype != q.dtype
    ):
        raise ValueError(
            f"hstu_decode_attention | caches must be [layers, pages, page_size, H, dh] = [.., .., .., "
            f"{q.shape[1]}, {q.shape[2]}] of q's dtype {q.dtype}, but got {tuple(pages.shape)} {pages.dtype} "
            f"and {tuple(v_cache.pages.shape)} {v_cache.pages.dtype}"
        )
    if not 0 <= layer < pages.shape[0]:
        raise ValueError(
            f"hstu_decode_attention | layer={layer} is outside the cache's {pages.shape[0]} layers"
        )
    if lengths.shape != (q.shape[0],) or k_cache.page_table.shape[0] != q.shape[0]:
        raise ValueError(
            f"hstu_decode_attention | lengths [B] and the page table [B, pages] must match B={q.shape[0]}, "
            f"but got {tuple(lengths.shape)} and {tuple(k_cache.page_table.shape)}"
        )
    count_dispatch("hstu_decode_attention", kernel)
    if kernel == "torch":
        return _decode_reference_in_place(q, k, v, k_cache, v_cache, lengths, layer)
    from .._triton import load_triton_module

    impl = load_triton_module("hstu_decode_attention", f"{__name__}.decode_triton")
    return impl.hstu_decode_triton(q, k, v, k_cache, v_cache, lengths, layer=layer)


def _decode_reference_in_place(q, k, v, k_cache, v_cache, lengths, layer):
    """The reference on the paged cache: append the new token, then attend over the gathered history."""
    rows = k_cache.rows(lengths.view(-1, 1)).view(-1)
    k_cache.pages[layer].flatten(0, 1)[rows] = k
    v_cache.pages[layer].flatten(0, 1)[rows] = v
    width = int(lengths.max()) if lengths.numel() else 0
    history_k = k_cache.history(layer, lengths, width)
    history_v = v_cache.history(layer, lengths, width)
    return hstu_decode_reference(q, k, v, history_k, history_v, lengths)
