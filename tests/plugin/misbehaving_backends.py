"""Backends that give the wrong answers the oracle must catch, each one realistic way (a conftest of the test
project registers them): the torch backend on CPU with one fault planted in what its session returns or
runs."""

from __future__ import annotations

import torch

from genrec_bench.backends.base import Backend
from genrec_bench.backends.torch_backend import TorchSession

_FIRST_ANSWER: dict = {}  # the "stale" backend's cache: its first answer, whatever it is asked later


def _fault(kind: str, scores: torch.Tensor, items: torch.Tensor, call: int, lengths: torch.Tensor):
    scores, items = scores.clone(), items.clone()
    if kind == "duplicate":
        items[0, 1] = items[0, 0]
    elif kind == "reversed":
        items = items.flip(1)
    elif kind == "one-row":
        items[1] = items[1].flip(0).roll(3)
        items[1] = items[1] + 1  # other (valid) catalogue items in that row
    elif kind == "scale":
        scores = scores * 1.01
    elif kind == "second-call" and call == 2:
        items = items.flip(0)  # every user gets another user's answer
    elif kind == "empty-history":
        items[lengths == 0] = items[lengths == 0].flip(
            1
        )  # cold-start users get their answer in the wrong order
    return scores, items


class FaultySession(TorchSession):
    def __init__(self, model, cell, kind: str, dtype=None):
        super().__init__(model if kind != "torch-as-triton" else model.variant(kernel="torch"), cell, "cpu")
        self.kind = kind
        if kind == "fp32-as-bf16":  # the cast to the cell's precision forgotten
            self.dtype = torch.float32
            self.model = self.model.float()

    def runner(self, drawn):
        run = super().runner(drawn)
        kind, calls, lengths = self.kind, [0], drawn["lengths"]
        key = (self.cell.id, "stale")

        def faulty():
            calls[0] += 1
            scores, items = run()
            if kind == "stale":
                return _FIRST_ANSWER.setdefault(key, (scores, items))
            return _fault(kind, scores, items, calls[0], lengths)

        return faulty


KINDS = (
    "duplicate",
    "reversed",
    "one-row",
    "scale",
    "second-call",
    "stale",
    "empty-history",
    "fp32-as-bf16",
    "torch-as-triton",
)


def backend_class(kind: str) -> type[Backend]:
    class Faulty(Backend):
        name = f"faulty-{kind}"
        modes = ("eager",)

        def prepare_impl(self, model, cell, context):
            return FaultySession(model, cell, kind)

    return Faulty
