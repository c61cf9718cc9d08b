"""The System Under Test of a served session: each LoadGen query is sent as requests through tritonclient's
asyncio client (the KServe v2 protocol the served target speaks, gRPC or HTTP).

A query's samples go as one request of up to the cell's batch users (Server and SingleStream queries are one
user each; Triton's dynamic batcher merges them), larger queries (MultiStream, Offline) as several requests at
once, at most MAX_IN_FLIGHT outstanding. Requests are built with the backend's own `request_arrays` and
`client.infer_args`, answers cut to the cell's k by the session's `fetch`, exactly as a per-call cell's are.

One event-loop thread, alive for the whole cell, sends, receives and completes (see completion.py on threads).
"""

from __future__ import annotations

import asyncio
import threading
import time

from genrec_bench.backends.base import ServedTarget
from genrec_bench.bench.loadgen.completion import Completions
from genrec_bench.bench.loadgen.qsl import QuerySampleLibrary
from genrec_bench.matrices.errors import BackendError

MAX_IN_FLIGHT = 256
CONNECT_TIMEOUT_S = 30.0
# A request not answered by then fails (and so completes its samples): a server that hangs without dying must
# not leave LoadGen waiting for ever.
REQUEST_TIMEOUT_S = 120.0


class ServedSUT:
    """LoadGen's SUT over a served session; `calls_ms(n)` times one request of n users."""

    kind = "served"

    def __init__(self, session, target: ServedTarget, qsl: QuerySampleLibrary, max_request: int):
        from genrec_bench.backends.triton_server.client import infer_args, module

        if target.request_arrays is None:
            raise BackendError(
                f"{target.name} | its served target cannot build requests for arbitrary users "
                f"(ServedTarget.request_arrays); it cannot run scenario cells"
            )
        self.session, self.target, self.qsl, self.max_request = session, target, qsl, max_request
        self._mod, self._infer_args = module(target.protocol, aio=True), infer_args
        self._single: dict[int, tuple] = {}  # QSL index → prebuilt (inputs, outputs) of a one-user request
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="genrec-loadgen-client", daemon=True
        )
        self._thread.start()
        self.client = self._await(self._connect(), CONNECT_TIMEOUT_S)
        self.completions: Completions | None = None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "protocol": self.target.protocol,
            "model": self.target.model,
            "max_users_per_request": self.max_request,
            "max_in_flight": MAX_IN_FLIGHT,
            "client": f"tritonclient.{self.target.protocol}.aio, one event-loop thread",
        }

    async def _connect(self):
        client = self._mod.InferenceServerClient(url=self.target.url)
        await client.is_server_live()
        self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        return client

    def _await(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _request(self, indices: list[int]) -> tuple:
        if len(indices) == 1 and indices[0] in self._single:
            return self._single[indices[0]]
        arrays = self.target.request_arrays(self.qsl.gather(indices))
        built = self._infer_args(self._mod, self.target.protocol, arrays, self.target.outputs)
        if len(indices) == 1:
            self._single[indices[0]] = built  # inputs are read-only once built: requests may share them
        return built

    async def _infer(self, indices: list[int]):
        inputs, outputs = self._request(indices)
        async with self._gate:
            result = await asyncio.wait_for(
                self.client.infer(self.target.model, inputs, outputs=outputs), REQUEST_TIMEOUT_S
            )
        scores_name, items_name = self.target.outputs
        return self.session.fetch((result.as_numpy(scores_name), result.as_numpy(items_name)))

    def calls_ms(self, users: int, repeats: int = 3) -> float:
        """The fastest of `repeats` sequential requests of `users` users."""
        indices, best = list(range(min(users, self.qsl.count))), float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            self._await(self._infer(indices))
            best = min(best, time.perf_counter() - t0)
        return best * 1e3

    # -- one LoadGen run
    def start(self, lg, *, accuracy: bool, wait: bool) -> None:
        """Begin a run (`wait` is the batcher's; the server's own dynamic batcher waits here)."""
        self.completions = Completions(lg, accuracy)

    def issue(self, samples) -> None:
        """LoadGen's issue_query: copy the samples out (LoadGen's memory) and hand their requests to the
        loop."""
        now = time.perf_counter_ns()
        entries = [(s.id, s.index, now) for s in samples]
        for i in range(0, len(entries), self.max_request):
            self.loop.call_soon_threadsafe(self._spawn, entries[i : i + self.max_request])

    def _spawn(self, chunk: list) -> None:
        self.loop.create_task(self._send(chunk))

    async def _send(self, chunk: list) -> None:
        ids, indices, issued = (list(x) for x in zip(*chunk))
        try:
            scores, items = await self._infer(indices)
        except Exception as exc:  # noqa: BLE001 - complete the samples; the runner fails the cell with it
            self.completions.fail(ids, issued, f"{type(exc).__name__}: {exc}")
            return
        self.completions.complete(ids, issued, scores.numpy(), items.numpy())

    def flush(self) -> None:
        """LoadGen's flush_queries: every request is sent as soon as it is issued."""

    def stop(self) -> None:
        """End a run: nothing to stop between runs (the loop serves the whole cell)."""

    def close(self) -> None:
        """Close the client and end the loop thread."""
        try:
            self._await(self.client.close(), CONNECT_TIMEOUT_S)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()
