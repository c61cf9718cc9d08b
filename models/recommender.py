"""The generative recommender: a decoder over item-id histories with three phases.

- prefill(ids, lengths) → top-k next items over the whole catalogue;
- decode(new_ids, lengths, k_cache, v_cache) → one new item per user on a KV cache → top-k;
- rank(ids, lengths, context, candidates) → candidate scores through a DLRM-style dot interaction + MLP.

Histories are right-padded [B, S] with id 0 as padding; `lengths` [B] counts the real items. Every phase
returns (scores [B, k], items [B, k]), best first. The interaction and the history pooling go through the
`kernels` dispatch functions, so `kernel=` switches them between the torch reference and the Triton kernels.
With `kernel="triton"` the catalogue top-k is the Triton kernel too, and HSTU models run their encoder jagged
end to end (models/jagged_encoder.py), decode on a paged KV cache; `kernel="torch"` is the padded model below.

Item rows are looked up in one step per call (`_item_lookup`): with the table on the device (`item_emb` a
plain nn.Embedding, what ONNX export sees) that is the table itself and the ids unchanged; a placement from
models/embedding (host memory, or a device cache of it) hands back its own table and the ids' rows in it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from genrec_bench.kernels.interaction import interaction
from genrec_bench.kernels.jagged_pooling import jagged_pooling
from genrec_bench.models import jagged_encoder
from genrec_bench.models.config import ModelConfig
from genrec_bench.models.embedding.table_init import item_table
from genrec_bench.models.layers import BLOCKS

PHASE_INPUTS = {
    "prefill": ("ids", "lengths"),
    "decode": ("new_ids", "lengths", "k_cache", "v_cache"),
    "rank": ("ids", "lengths", "context", "candidates"),
}
PHASE_OUTPUTS = ("scores", "items")
# The inputs of a phase that hold item ids (what its one item lookup step sees).
ITEM_ID_INPUTS = {"prefill": ("ids",), "decode": ("new_ids",), "rank": ("ids", "candidates")}


def padded_to_jagged(ids: torch.Tensor, lengths: torch.Tensor):
    """Right-padded [B, S] ids → (values [B*S], offsets [B+2]) with the real items packed at the front.

    Static shapes only (scatter instead of boolean indexing), so it exports, compiles and graph-captures. The
    padding left over at the tail of `values` becomes one extra last row (offsets[-1] = B*S, as the jagged
    contract wants); callers drop that row's pooled result.
    """
    b, s = ids.shape
    ends = torch.cumsum(lengths, 0)
    offsets = torch.cat([torch.zeros_like(ends[:1]), ends, torch.full_like(ends[:1], b * s)])
    pos = torch.arange(s, device=ids.device).unsqueeze(0)
    valid = pos < lengths.unsqueeze(1)
    dest = torch.where(valid, offsets[:b].unsqueeze(1) + pos, torch.full_like(ids, b * s))
    packed = torch.zeros(b * s + 1, dtype=ids.dtype, device=ids.device)
    packed = packed.scatter(0, dest.reshape(-1), ids.reshape(-1))
    return packed[: b * s], offsets


class GenerativeRecommender(nn.Module):
    """Seeded, deterministic: the same preset always builds the same weights."""

    def __init__(self, cfg: ModelConfig, kernel: str = "torch"):
        super().__init__()
        self.cfg, self.kernel, self.top_k = cfg, kernel, cfg.top_k
        # Where the item table should live when a backend places this model (models/embedding/placement.py).
        self.embedding = cfg.embedding
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            d = cfg.d_model
            self.item_emb = item_table(cfg.num_items, d, cfg.seed)
            # One more position than the longest history: a decode step writes at position `length`.
            self.pos_emb = nn.Embedding(cfg.max_seq_len + 1, d)
            nn.init.normal_(self.pos_emb.weight, std=0.02)
            self.blocks = nn.ModuleList(
                BLOCKS[cfg.attention](d, cfg.num_heads) for _ in range(cfg.num_layers)
            )
            self.norm_out = nn.LayerNorm(d)
            self.context_emb = nn.ModuleList(nn.Embedding(v, d) for v in cfg.context_vocab)
            width = d + cfg.num_features * (cfg.num_features - 1) // 2
            layers: list[nn.Module] = []
            for hidden in cfg.mlp_hidden:
                layers += [nn.Linear(width, hidden), nn.ReLU()]
                width = hidden
            self.rank_mlp = nn.Sequential(*layers, nn.Linear(width, 1))
        self.eval()

    # ------------------------------------------------------------------ item rows

    def _item_lookup(self, *ids):
        """(table, ids') with table[ids'] the item row of every id: one lookup step for all id tensors of a
        call."""
        if isinstance(self.item_emb, nn.Embedding):
            return self.item_emb.weight, ids
        return self.item_emb.remap(*ids)

    def _rows(self, ids, table):
        # A placement may store rows in another dtype than the model computes in (its `storage`).
        return F.embedding(ids, table).to(self.pos_emb.weight.dtype)

    def _catalogue(self):
        return self.item_emb.weight if isinstance(self.item_emb, nn.Embedding) else self.item_emb.catalogue()

    # ------------------------------------------------------------------ encoder

    def _jagged(self) -> bool:
        """kernel="triton" on HSTU blocks: the encoder runs jagged through the Triton kernels (item table on
        the device: the plan skips other placements with kernel=triton)."""
        return self.kernel == "triton" and self.cfg.attention == "hstu"

    @staticmethod
    def _history(ids, lengths):
        """Whatever a caller leaves past a user's length is padding: read as id 0 (before any lookup step,
        which may renumber ids). Causal attention already keeps padding out of every real position; this keeps
        it out of an empty history's state too (read at position 0)."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        return ids.masked_fill(pos.unsqueeze(0) >= lengths.unsqueeze(1), 0)

    def _encode(self, ids, lengths, table=None):
        """Full causal pass over padded histories → (last real hidden state [B, d], keys, values per layer).
        `table` is what the call's lookup step handed back with `ids` renumbered for it; when None the lookup
        happens here."""
        if self._jagged():
            state, keys, values, _ = jagged_encoder.encode(self, ids, lengths)
            return state, keys, values
        if table is None:
            table, (ids,) = self._item_lookup(self._history(ids, lengths))
        b, s = ids.shape
        pos = torch.arange(s, device=ids.device)
        x = self._rows(ids, table) + self.pos_emb(pos).unsqueeze(0)
        mask = (pos.unsqueeze(0) <= pos.unsqueeze(1)).view(1, 1, s, s)
        count = (pos + 1).to(x.dtype).view(1, 1, s, 1)
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, mask, count)
            keys.append(k)
            values.append(v)
        last = (lengths - 1).clamp(min=0).view(b, 1, 1).expand(b, 1, x.shape[-1])
        return self.norm_out(x.gather(1, last).squeeze(1)), keys, values

    def _top_k_catalogue(self, state):
        if self.kernel == "triton":
            return jagged_encoder.catalogue_top_k(self, state)
        # Item 0 is padding: score only the real catalogue, then shift indices back to item ids.
        logits = state @ self._catalogue()[1:].t()
        scores, idx = torch.topk(logits, self.top_k, dim=-1)
        return scores, idx + 1

    # ------------------------------------------------------------------ phases

    def prefill(self, ids, lengths):
        return self._top_k_catalogue(self.prefill_state(ids, lengths))

    def prefill_state(self, ids, lengths):
        """The user state prefill scores the catalogue with: [B, d]."""
        state, _, _ = self._encode(ids, lengths)
        return state

    def item_scores(self, state, items):
        """The catalogue score of given items: state · embedding, [B, d] × [B, k] ids → [B, k]. The oracle
        scores any item a cell returns with it, not only those in the reference's own top k."""
        return (state.unsqueeze(1) * F.embedding(items, self._catalogue())).sum(-1)

    def build_cache(self, ids, lengths):
        """KV cache of a history: ([L, B, H, S, dh], [L, B, H, S, dh]); positions ≥ length are never read.
        Jagged (kernel="triton"): a pair of PagedCache (keys, values), see
        kernels/hstu_attention/paged_cache.py."""
        if self._jagged():
            return jagged_encoder.build_cache(self, ids, lengths)
        _, keys, values = self._encode(ids, lengths)
        return torch.stack(keys), torch.stack(values)

    def decode(self, new_ids, lengths, k_cache, v_cache):
        return self._top_k_catalogue(self.decode_state(new_ids, lengths, k_cache, v_cache))

    def decode_state(self, new_ids, lengths, k_cache, v_cache):
        """The user state after one new item on the KV cache: [B, d]."""
        if self._jagged():
            return jagged_encoder.decode(self, new_ids, lengths, k_cache, v_cache)
        b, s = k_cache.shape[1], k_cache.shape[3]
        table, (new_ids,) = self._item_lookup(new_ids)
        x = (self._rows(new_ids, table) + self.pos_emb(lengths)).unsqueeze(1)
        pos = torch.arange(s + 1, device=new_ids.device).unsqueeze(0)
        # The new item sees the cached history (positions < length) and itself (the appended slot s).
        mask = ((pos < lengths.unsqueeze(1)) | (pos == s)).view(b, 1, 1, s + 1)
        count = (lengths + 1).to(x.dtype).view(b, 1, 1, 1)
        for layer, block in enumerate(self.blocks):
            x, _, _ = block(x, mask, count, k_cache[layer], v_cache[layer])
        return self.norm_out(x.squeeze(1))

    def rank(self, ids, lengths, context, candidates):
        b, c = candidates.shape
        if self._jagged():  # the jagged encoder takes the device table's ids as they are
            table, rows, cand_rows = self._catalogue(), ids, candidates
            state, _, _ = self._encode(ids, lengths)
        else:
            table, (rows, cand_rows) = self._item_lookup(self._history(ids, lengths), candidates)
            state, _, _ = self._encode(rows, lengths, table)
        values, offsets = padded_to_jagged(rows, lengths)
        pooled = jagged_pooling(values, offsets, table, mode="mean", kernel=self.kernel)[:b]
        contexts = [emb(context[:, i]) for i, emb in enumerate(self.context_emb)]
        shared = torch.stack([state, pooled.to(state.dtype), *contexts], dim=1)  # [B, F-1, d]
        cand = self._rows(cand_rows, table)  # [B, C, d]
        features = torch.cat([shared.unsqueeze(1).expand(b, c, *shared.shape[1:]), cand.unsqueeze(2)], dim=2)
        flat = features.reshape(b * c, features.shape[2], features.shape[3])
        z = interaction(flat, dense=cand.reshape(b * c, -1), kernel=self.kernel)
        logits = self.rank_mlp(z).view(b, c)
        scores, idx = torch.topk(logits, min(self.top_k, c), dim=-1)
        return scores, candidates.gather(1, idx)

    def variant(
        self, *, top_k: int | None = None, kernel: str | None = None, embedding=None
    ) -> GenerativeRecommender:
        """The same weights (shared, not copied) with another k, kernel or embedding placement to apply when a
        backend places it: the oracle's wide-k reference, a cell's kernel and placement."""
        clone = copy.copy(self)
        clone.top_k = self.top_k if top_k is None else top_k
        clone.kernel = self.kernel if kernel is None else kernel
        clone.embedding = self.embedding if embedding is None else embedding
        return clone


class PhaseModule(nn.Module):
    """One phase as a plain `forward(*inputs)`: what torch.compile, CUDA graphs and ONNX export take."""

    def __init__(self, model: GenerativeRecommender, phase: str):
        super().__init__()
        if phase not in PHASE_INPUTS:
            raise ValueError(f"unknown phase {phase!r}; phases: {', '.join(PHASE_INPUTS)}")
        self.model, self.phase = model, phase

    def forward(self, *inputs):
        return getattr(self.model, self.phase)(*inputs)
