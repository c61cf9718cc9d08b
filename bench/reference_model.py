"""The oracle's reference: the preset's model in fp32 on CPU over a cell's inputs, built once per process (a
base preset's weights take seconds to initialise).

A reference answers two questions: its own top-K (wider than the cell's k, so ties around the k-th item are
seen) and the reference score of ANY item a cell returns — catalogue phases score an item as state · embedding
from the reference's own user state, rank looks the item up among the row's scored candidates — so the oracle
can check each returned item against its own score, not only the set of items.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import torch

from genrec_bench.models import build_model, phase_inputs, preset

# The reference returns this many times the cell's k, so the oracle can see ties around the k-th item.
REFERENCE_WIDTH = 2


@lru_cache(maxsize=4)
def cached_model(name: str):
    """The preset's fp32 CPU model (kernel="torch"); cells take `.variant(kernel=...)` of it. Built outside
    any inference mode: its weights are ordinary tensors that export and compile like a user's model."""
    with torch.inference_mode(False):
        return build_model(name)


def model_for(name: str, kernel: str):
    return cached_model(name).variant(kernel=kernel)


@dataclass(frozen=True)
class Reference:
    """The fp32 reference of one cell's inputs."""

    phase: str
    scores: torch.Tensor  # [B, K] best first (fp32)
    items: torch.Tensor  # [B, K]
    num_items: int
    state: torch.Tensor | None  # [B, d] catalogue phases: the user state the catalogue is scored with
    table: torch.Tensor | None  # [N, d] the item embeddings (shared with the cached model)
    candidate_scores: tuple | None  # rank: per row {item: score} over the row's candidates
    candidate_counts: tuple | None  # rank: per row Counter of the candidates (a candidate may repeat)

    def rows(self, index: torch.Tensor) -> Reference:
        """The reference of the users at `index` only."""
        picked = index.tolist()
        return Reference(
            self.phase,
            self.scores[index],
            self.items[index],
            self.num_items,
            None if self.state is None else self.state[index],
            self.table,
            None if self.candidate_scores is None else tuple(self.candidate_scores[i] for i in picked),
            None if self.candidate_counts is None else tuple(self.candidate_counts[i] for i in picked),
        )

    @staticmethod
    def concat(parts: list[Reference]) -> Reference:
        """One reference of the users of `parts`, in order (a library's reference is computed in chunks)."""
        first = parts[0]

        def joined(attr):
            return None if getattr(first, attr) is None else sum((tuple(getattr(p, attr)) for p in parts), ())

        return Reference(
            first.phase,
            torch.cat([p.scores for p in parts]),
            torch.cat([p.items for p in parts]),
            first.num_items,
            None if first.state is None else torch.cat([p.state for p in parts]),
            first.table,
            joined("candidate_scores"),
            joined("candidate_counts"),
        )

    @property
    def repeats_allowed(self) -> bool:
        """Rank scores candidates, which may repeat an item; a catalogue top-k never repeats one."""
        return self.phase == "rank"

    def score_of(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference scores (float64) of `items` [B, k], and a mask of the items that are valid answers at all
        (inside the catalogue and not the padding id 0; for rank: one of the row's candidates)."""
        items = items.long()
        if self.phase == "rank":
            valid = torch.tensor(
                [[int(i) in row for i in r] for r, row in zip(items.tolist(), self.candidate_scores)]
            )
            scores = torch.tensor(
                [
                    [row.get(int(i), float("nan")) for i in r]
                    for r, row in zip(items.tolist(), self.candidate_scores)
                ],
                dtype=torch.float64,
            )
            return scores, valid
        valid = (items > 0) & (items < self.num_items)
        safe = items.where(valid, torch.ones_like(items))
        scores = (self.state.double().unsqueeze(1) * self.table[safe].double()).sum(-1)
        return scores.masked_fill(~valid, float("nan")), valid


_recent: OrderedDict = OrderedDict()
RECENT_REFERENCES = 4


def reference(name: str, phase: str, drawn: dict) -> Reference:
    """The reference of `drawn` inputs. The last few are kept: the matrix runs all cells of one shape in a
    row, each needing the reference of its inputs, of a second input set and (decode) of the longer history,
    and at GPU scale the CPU reference costs more than the cells it checks."""
    key = (
        name,
        phase,
        tuple((k, tuple(v.shape), hash(v.numpy().tobytes())) for k, v in sorted(drawn.items())),
    )
    if key in _recent:
        _recent.move_to_end(key)
    else:
        _recent[key] = _compute(name, phase, drawn)
        while len(_recent) > RECENT_REFERENCES:
            _recent.popitem(last=False)
    return _recent[key]


def _compute(name: str, phase: str, drawn: dict) -> Reference:
    base = cached_model(name)  # outside the inference mode below
    return _run(base, preset(name), phase, drawn)


@torch.inference_mode()
def _run(base, cfg, phase: str, drawn: dict) -> Reference:
    if phase == "rank":
        model = base.variant(top_k=cfg.num_candidates, kernel="torch")
        scores, items = model.rank(*phase_inputs(model, phase, drawn))
        table = [dict(zip(i.tolist(), s.double().tolist())) for s, i in zip(scores, items)]
        counts = tuple(Counter(row.tolist()) for row in drawn["candidates"])
        return Reference(phase, scores.float(), items.long(), cfg.num_items, None, None, tuple(table), counts)
    model = base.variant(top_k=min(cfg.num_items - 1, REFERENCE_WIDTH * cfg.top_k), kernel="torch")
    inputs = phase_inputs(model, phase, drawn)
    state = model.prefill_state(*inputs) if phase == "prefill" else model.decode_state(*inputs)
    scores, items = model._top_k_catalogue(state)
    return Reference(
        phase,
        scores.float(),
        items.long(),
        cfg.num_items,
        state.float(),
        model.item_emb.weight.detach(),
        None,
        None,
    )


def longer_history(drawn: dict) -> dict:
    """A decode cell's inputs as prefill inputs: each history with its new item appended. Decode's answer must
    equal prefill's on these — a check of the decode path that needs no second implementation."""
    ids, lengths = drawn["ids"].clone(), drawn["lengths"]
    ids.scatter_(1, lengths.unsqueeze(1), drawn["new_ids"].unsqueeze(1))
    return {"ids": ids, "lengths": lengths + 1}


def noisy_padding(drawn: dict, num_items: int, seed: int) -> dict:
    """The same inputs with every padding position (at or past a user's length) holding a random real item id
    instead of 0: an answer that changes reads padding it must not."""
    gen = torch.Generator().manual_seed(seed)
    ids, lengths = drawn["ids"], drawn["lengths"]
    noise = torch.randint(1, num_items, ids.shape, generator=gen)
    padding = torch.arange(ids.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
    return {**drawn, "ids": torch.where(padding, noise, ids)}
