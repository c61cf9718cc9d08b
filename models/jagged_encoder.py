"""The recommender's HSTU encoder run jagged through the Triton kernels: what ``kernel="triton"`` means.

The padded [B, S] histories become jagged once, at the start: T rows, T = Σ max(length, 1) (an empty history
keeps its first slot, read as the padding id 0, exactly as the padded encoder reads it), with offsets [B+1].
Every block then works on [T, d] rows: the projections and norms touch no padding and attention is the jagged
Triton kernel (kernels/hstu_attention). Decode runs one row per user against the paged KV cache that
``build_cache`` writes (kernels/hstu_attention/paged_cache.py: the history is written once, each decode
step writes its token at position ``length`` and never moves the history). The catalogue step is the
Triton top-k (kernels/catalogue_topk), which never holds the [B, N] logits.

T is read on the host (one sync at the start), so the dense layers get exactly T rows. Under CUDA-graph
capture no sync is allowed: there the encoder runs over all B·S rows (the attention kernel still skips the
padding, the projections do not), which stays right for whatever lengths the captured buffers hold later.

The kernel calls are hidden from torch.compile (``torch.compiler.disable``): it compiles the dense layers
between them, and the kernels run as they are.
"""

from __future__ import annotations

import torch

from genrec_bench.kernels.catalogue_topk import catalogue_topk
from genrec_bench.kernels.hstu_attention import (
    hstu_attention,
    hstu_decode_attention,
    jagged_positions,
    paged_caches_from_jagged,
)

_attention = torch.compiler.disable(hstu_attention)
_decode_attention = torch.compiler.disable(hstu_decode_attention)
_catalogue_topk = torch.compiler.disable(catalogue_topk)


def row_count(ids: torch.Tensor, offsets: torch.Tensor) -> int:
    """How many rows the jagged encoder runs: the real T (one host sync), or all B·S under CUDA-graph
    capture."""
    if ids.is_cuda and torch.cuda.is_current_stream_capturing():
        return ids.numel()
    return int(offsets[-1])


@torch.compiler.disable
def to_jagged(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids [B, S] → (ids [T], positions [T], offsets [B+1]); see the module doc for T."""
    width = ids.shape[1]
    counts = lengths.clamp(min=1)
    offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    user, pos = jagged_positions(offsets, row_count(ids, offsets))
    pos = pos.clamp(max=width - 1)  # rows past offsets[-1] (capture only) read a real slot and are never used
    # An empty history's one row is its first slot read as padding (id 0), whatever the caller left there.
    return ids[user, pos].masked_fill(pos >= lengths[user], 0), pos, offsets


def _block(block, x: torch.Tensor, attend) -> torch.Tensor:
    """One HSTUBlock on rows x [R, d] with ``attend(q, k, v)`` → [R, H, dh]: (its output [R, d], k, v), the
    same math as HSTUBlock.forward."""
    rows, d_model = x.shape
    heads = block.heads
    u, v, q, k = torch.nn.functional.silu(block.uvqk(block.norm_in(x))).split(d_model, dim=-1)
    q, k, v = (t.view(rows, heads, d_model // heads) for t in (q, k, v))
    attn = attend(q, k, v).view(rows, d_model)
    return x + block.out(block.norm_attn(attn) * u), k, v


def encode(model, ids: torch.Tensor, lengths: torch.Tensor):
    """Jagged causal pass → (last real hidden state [B, d], per-layer keys and values [T, H, dh], offsets)."""
    values, pos, offsets = to_jagged(ids, lengths)
    x = model.item_emb(values) + model.pos_emb(pos)
    width = ids.shape[1]
    keys, vals = [], []
    for block in model.blocks:
        x, k, v = _block(
            block, x, lambda q, k, v: _attention(q, k, v, offsets, max_seq_len=width, kernel="triton")
        )
        keys.append(k)
        vals.append(v)
    return model.norm_out(x[offsets[1:] - 1]), keys, vals, offsets


def build_cache(model, ids: torch.Tensor, lengths: torch.Tensor):
    """The prefill's write of the paged KV caches (keys, values) of a history, with room for the next
    token."""
    _, keys, values, offsets = encode(model, ids, lengths)
    return paged_caches_from_jagged(keys, values, offsets, lengths, width=ids.shape[1] + 1)


def decode(model, new_ids: torch.Tensor, lengths: torch.Tensor, k_cache, v_cache) -> torch.Tensor:
    """One new item per user on the paged caches → the normalised last hidden state [B, d]."""
    x = model.item_emb(new_ids) + model.pos_emb(lengths)
    for layer, block in enumerate(model.blocks):
        x, _, _ = _block(
            block,
            x,
            lambda q, k, v, layer=layer: _decode_attention(
                q, k, v, k_cache, v_cache, lengths, layer=layer, kernel="triton"
            ),
        )
    return model.norm_out(x)


def catalogue_top_k(model, state: torch.Tensor):
    """(scores, items) [B, top_k] over the whole catalogue (item 0 excluded) through the Triton top-k."""
    return _catalogue_topk(state, model.item_emb.weight, model.top_k, kernel="triton")
