"""A Triton server's control plane through tritonclient's HTTP client: readiness, model loading, the
statistics extension and server metadata. Every failure the caller should hear about is one BackendError line.

tritonclient is imported here, lazily (the `serving` extra); the backend's availability check names it when
it is missing.
"""

from __future__ import annotations

from genrec_bench.matrices.errors import BackendError


class ServerControl:
    """Control requests to the server whose HTTP endpoint is `http` (`host:port`)."""

    def __init__(self, http: str, *, timeout_s: float = 300.0):
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        self.http = http
        self._errors = (InferenceServerException, OSError)
        # Loading a model may take minutes (a CUDA-graph capture per batch bucket): the network timeout covers
        # it.
        self._client = httpclient.InferenceServerClient(
            url=http, connection_timeout=5.0, network_timeout=timeout_s
        )

    def ready(self) -> bool:
        """The server answers and is ready (False while it starts, or when nothing listens)."""
        try:
            return bool(self._client.is_server_ready())
        except self._errors:
            return False

    def live(self) -> bool:
        try:
            return bool(self._client.is_server_live())
        except self._errors:
            return False

    def model_ready(self, name: str) -> bool:
        try:
            return bool(self._client.is_model_ready(name))
        except self._errors:
            return False

    def load(self, name: str) -> None:
        """Load (or reload) `name` from the server's repository; raises BackendError with the server's
        reason."""
        try:
            self._client.load_model(name)
        except self._errors as exc:
            raise BackendError(f"triton | model {name} failed to load: {_reason(exc)}") from None

    def statistics(self, name: str) -> dict:
        """The statistics extension's JSON for `name` (every version)."""
        try:
            return self._client.get_inference_statistics(model_name=name)
        except self._errors as exc:
            raise BackendError(f"triton | statistics of {name} unavailable: {_reason(exc)}") from None

    def version(self) -> str | None:
        """The server's own version from its metadata, None when it does not answer."""
        try:
            return self._client.get_server_metadata().get("version")
        except self._errors:
            return None

    def close(self) -> None:
        self._client.close()


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
