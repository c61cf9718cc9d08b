"""Decoder blocks: HSTU (pointwise SiLU attention with gating) and a standard causal softmax transformer.

Both return the block output plus the layer's keys and values, so one code path serves prefill (full causal
attention, keys/values become the KV cache) and decode (one query against cache + itself). Everything is
written with static shapes and no host synchronisation, so the same module exports to ONNX, compiles and
graph-captures.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, S, H*dh] → [B, H, S, dh]."""
    b, s, d = x.shape
    return x.view(b, s, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B, H, S, dh] → [B, S, H*dh]."""
    b, h, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, h * dh)


class HSTUBlock(nn.Module):
    """One HSTU layer (Zhai et al. 2024, "Actions Speak Louder than Words").

    U, V, Q, K = split(SiLU(W1·LN(x)));  A = SiLU(Q·Kᵀ/√dh) / n, masked causally, where n counts the positions
    a query may see (so a decode step divides by the same n as the prefill row it extends);
    y = x + W2·(LN(A·V) ⊙ U). No softmax: attention weights are pointwise, which is what lets HSTU keep
    the intensity of a user's engagement rather than normalising it away.
    """

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads, self.d_model = heads, d_model
        self.norm_in = nn.LayerNorm(d_model)
        self.uvqk = nn.Linear(d_model, 4 * d_model)
        self.norm_attn = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, d_model)

    def project(self, x: torch.Tensor):
        u, v, q, k = F.silu(self.uvqk(self.norm_in(x))).split(self.d_model, dim=-1)
        return u, split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads)

    def attend(self, x, u, q, k, v, mask, count):
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
        weights = F.silu(scores).masked_fill(~mask, 0.0) / count
        attn = merge_heads(torch.matmul(weights, v))
        return x + self.out(self.norm_attn(attn) * u)

    def forward(self, x, mask, count, k_cache=None, v_cache=None):
        u, q, k, v = self.project(x)
        keys, values = (k, v) if k_cache is None else (torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2))
        return self.attend(x, u, q, keys, values, mask, count), k, v


class SoftmaxBlock(nn.Module):
    """A pre-LN causal transformer layer: the standard alternative to HSTU (`attention: softmax`)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm_ffn = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x, mask, count, k_cache=None, v_cache=None):
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(self.norm_attn(x)).chunk(3, dim=-1))
        keys, values = (k, v) if k_cache is None else (torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2))
        attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        x = x + self.out(merge_heads(attn))
        return x + self.ffn(self.norm_ffn(x)), k, v


BLOCKS = {"hstu": HSTUBlock, "softmax": SoftmaxBlock}
