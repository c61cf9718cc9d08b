"""Where the item table lives: on the device, in host memory, or in host memory behind a device cache.

placement.py  — the item-table modules the recommender looks rows up through, and `placed_copy` (a backend's
                copy of a model with its table placed as `model.embedding` says);
cache.py      — the per-call set-associative cache (dedupe, device index, victims, fetch, counters);
policies.py   — LRU / LFU victim keys as pure functions;
reference.py  — a pure-Python model of the policies, used by the tests only;
table_init.py — the item table's seeded initial weights (chunked and parallel for huge tables).
The settings themselves (EmbeddingSpec, labels, the matrix section) are in matrices/embedding.py.
"""

from genrec_bench.models.embedding.cache import COUNTERS, EmbeddingCache, cache_geometry
from genrec_bench.models.embedding.placement import (
    CachedTable,
    HostBackedTable,
    HostTable,
    StepTimer,
    cache_rows,
    phase_problem,
    placed_copy,
    storage_dtype,
)

__all__ = [
    "COUNTERS",
    "EmbeddingCache",
    "cache_geometry",
    "CachedTable",
    "HostBackedTable",
    "HostTable",
    "StepTimer",
    "cache_rows",
    "phase_problem",
    "placed_copy",
    "storage_dtype",
]
