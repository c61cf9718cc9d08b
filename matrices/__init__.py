"""Matrix files: YAML axes → validated, frozen cells (the first stage of the data flow)."""
from matrices import (
           embedding,  # noqa: F401  (registers the `embedding:` section parser and label check)
           serving,  # noqa: F401  (registers the `serving:` section parser)
)
from matrices.cells import PHASES, PRECISIONS, Cell
from matrices.errors import BackendUnavailable, HarnessError, MatrixError
from matrices.loader import Known, Matrix, Rule, Timing, load_matrix

__all__ = ["Cell", "PHASES", "PRECISIONS", "Known", "Matrix", "Rule", "Timing", "load_matrix",
           "HarnessError", "MatrixError", "BackendUnavailable"]
