"""What the Triton backends take from the session rather than the cell: the matrix's `serving:` section and
`--triton-url`. Backend.prepare(model, cell) sees no matrix, so the pytest plugin hands them over once."""
from __future__ import annotations

import os

from genrec_bench.matrices.serving import ServingSpec

URL_ENV = "GENREC_TRITON_URL"
_spec: ServingSpec | None = None


def configure(*, spec: ServingSpec | None = None, url: str | None = None) -> None:
    """Set the serving section of the session's matrix and, when given, the URL of an existing server (then
    nothing is started). Called by the pytest plugin after it loads the matrix."""
    global _spec
    _spec = spec
    if url:
        os.environ[URL_ENV] = url


def serving() -> ServingSpec:
    return _spec or ServingSpec()
