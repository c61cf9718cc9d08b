"""The Query Sample Library: a fixed, seeded set of users of the preset's workload, addressed by LoadGen's
sample index, and the oracle's fp32 reference for every one of them.

One draw of `count` users (`models.workload.draw` with the section's seed), padded to the cell's seq_len: what
every backend and the reference see. The reference is computed once per library, in chunks (the catalogue
logits of a `base` user are 4 MB), before any LoadGen run starts; libraries are kept per process, so the cells
of one shape share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from genrec_bench.bench.reference_model import Reference, reference
from genrec_bench.models import draw, preset

REFERENCE_CHUNK = 64  # users per reference call: bounds the [users, catalogue] logits it materialises


@dataclass
class QuerySampleLibrary:
    model: str
    phase: str
    seq_len: int
    count: int
    seed: int
    drawn: dict[str, torch.Tensor]
    _reference: Reference | None = field(default=None, repr=False)

    @property
    def mean_history(self) -> float:
        return float(self.drawn["lengths"].float().mean())

    def gather(self, indices) -> dict[str, torch.Tensor]:
        """The users at `indices` (LoadGen sample indices) as one batch."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return {name: value.index_select(0, index) for name, value in self.drawn.items()}

    def padded(self, indices, size: int) -> dict[str, torch.Tensor]:
        """The users at `indices`, padded to `size` rows by repeating the last one (a bucket's fixed shape);
        every user's answer depends on its own row only, so padding changes nobody's result."""
        indices = list(indices)
        if not 0 < len(indices) <= size:
            raise ValueError(f"{len(indices)} users do not fit a bucket of {size}")
        return self.gather(indices + [indices[-1]] * (size - len(indices)))

    def reference(self) -> Reference:
        """The fp32 CPU reference of every user (the oracle's: wide top-k, and any item's score)."""
        if self._reference is None:
            self._reference = Reference.concat(
                [
                    reference(
                        self.model, self.phase, self.gather(range(i, min(i + REFERENCE_CHUNK, self.count)))
                    )
                    for i in range(0, self.count, REFERENCE_CHUNK)
                ]
            )
        return self._reference


@lru_cache(maxsize=2)
def library(model: str, phase: str, seq_len: int, count: int, seed: int) -> QuerySampleLibrary:
    """The library of `count` users of `model`'s workload for `phase` at `seq_len`, seeded by `seed`."""
    drawn = draw(preset(model), phase, count, seq_len, seed=seed)
    return QuerySampleLibrary(model, phase, seq_len, count, seed, drawn)
