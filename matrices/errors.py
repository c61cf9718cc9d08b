"""The harness's one error hierarchy.

User mistakes (a bad matrix, an unknown backend) become one-line messages in the CLI and the pytest plugin,
never tracebacks; programming errors stay ordinary exceptions. Every later stage of the data flow (models,
backends, bench, reports) imports from here, so the hierarchy lives in the first stage.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness reports as one line."""


class MatrixError(HarnessError):
    """A matrix file is malformed: names the file, line and field, and says how to fix it."""

    def __init__(self, path: str, line: int | None, field: str, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: {message}")


class BackendUnavailable(HarnessError):
    """A backend cannot run on this machine; the reason becomes the cell's skip reason."""

    def __init__(self, backend: str, reason: str):
        self.backend, self.reason = backend, reason
        super().__init__(f"{backend} | unavailable: {reason}")


class BackendError(HarnessError):
    """A backend failed to prepare or run a cell (export failed, engine build failed, server died)."""


class RegistryError(HarnessError, ValueError):
    """A registry was misused: a duplicate name, or a lookup of a name it does not have."""


class OracleMismatch(HarnessError, AssertionError):
    """A cell's outputs disagree with the fp32 reference beyond the tolerance; its numbers are still
    recorded."""


class ResultsError(HarnessError):
    """A results file cannot be read or does not match the record schema."""
