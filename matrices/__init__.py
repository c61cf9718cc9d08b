"""Matrix files: YAML axes → validated, frozen cells (the first stage of the data flow)."""

from genrec_bench.matrices import (  # noqa: F401  (each registers its section parser)
    embedding,  # `embedding:` and the embedding label check
    scenario,  # `scenario:`
    serving,  # `serving:`
)
from genrec_bench.matrices.cells import PHASES, PRECISIONS, Cell
from genrec_bench.matrices.errors import BackendUnavailable, HarnessError, MatrixError
from genrec_bench.matrices.loader import Known, Matrix, Rule, Timing, load_matrix

__all__ = [
    "Cell",
    "PHASES",
    "PRECISIONS",
    "Known",
    "Matrix",
    "Rule",
    "Timing",
    "load_matrix",
    "HarnessError",
    "MatrixError",
    "BackendUnavailable",
]
