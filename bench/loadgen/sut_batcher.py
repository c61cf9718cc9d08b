"""The System Under Test of an in-process session: a batcher thread that turns LoadGen's queries into the
session's calls.

LoadGen's issue callback only queues (sample id, QSL index, arrival time); one long-lived thread takes up to
the cell's batch of queued samples — in Server waiting at most `max_wait` after the first for the batch to
fill, elsewhere taking what one issue call brought (SingleStream, MultiStream and Offline issue a query's
samples together) — and runs them through the smallest bucket that holds them.

Buckets: a session's closure is built for one input shape (`Session.runner(drawn)`), and compiled graphs and
captured CUDA graphs are specialised to it. So each bucket size gets one `Session.bucket_runner` at start-up
(compiled or captured there, outside any LoadGen run), and a batch of n users is padded to its bucket by
repeating a user; `load()` copies the batch into the bucket's input buffers. The cost of padding is part of
what LoadGen measures, as it would be in a deployment with the same buckets.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque

from genrec_bench.bench.loadgen.completion import Completions
from genrec_bench.bench.loadgen.qsl import QuerySampleLibrary

WARMUP_CALLS = 2


def default_buckets(batch: int, listed: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The bucket sizes for a cell whose largest call is `batch` users: the listed ones up to it (powers of
    two when none are listed), and `batch` itself."""
    sizes = listed or tuple(1 << i for i in range(batch.bit_length()))
    return tuple(sorted({b for b in sizes if b < batch} | {batch}))


class BatcherSUT:
    """LoadGen's SUT over an in-process session; `calls_ms(n)` times the bucket that serves n users."""

    kind = "batcher"

    def __init__(self, session, qsl: QuerySampleLibrary, buckets: tuple[int, ...], max_wait_ms: float):
        self.session, self.qsl = session, qsl
        self.buckets, self.max_batch = buckets, buckets[-1]
        self.max_wait_s = max_wait_ms / 1e3
        self.runners = {}
        for size in buckets:  # compile / capture every bucket now, not inside a measured run
            self.runners[size] = session.bucket_runner(qsl.padded(range(min(size, qsl.count)), size))
            for _ in range(WARMUP_CALLS):
                session.fetch(self.runners[size].run())
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.completions: Completions | None = None

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "max_batch": self.max_batch,
            "buckets": list(self.buckets),
            "max_wait_ms": self.max_wait_s * 1e3,
        }

    def calls_ms(self, users: int, repeats: int = 3) -> float:
        """The fastest of `repeats` back-to-back calls for `users` users, load and fetch included."""
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            self._call(list(range(min(users, self.qsl.count))))
            best = min(best, time.perf_counter() - t0)
        return best * 1e3

    def _call(self, indices: list[int]):
        """(scores, items) of the users at `indices`, through the smallest bucket that holds them."""
        size = self.buckets[bisect.bisect_left(self.buckets, len(indices))]
        runner = self.runners[size]
        runner.load(self.qsl.padded(indices, size))
        scores, items = self.session.fetch(runner.run())
        return scores[: len(indices)], items[: len(indices)]

    # -- one LoadGen run
    def start(self, lg, *, accuracy: bool, wait: bool) -> None:
        """Begin a run: `wait` lets a batch wait up to max_wait for more samples (Server)."""
        self.completions, self.lg = Completions(lg, accuracy), lg
        self._wait, self._stop = wait, False
        self._thread = threading.Thread(target=self._loop, name="genrec-loadgen-batcher", daemon=True)
        self._thread.start()

    def issue(self, samples) -> None:
        """LoadGen's issue_query: queue only. The QuerySample objects are LoadGen's own memory, valid only
        during this call, so their fields are copied out here."""
        now = time.perf_counter_ns()
        with self._cond:
            self._queue.extend((s.id, s.index, now) for s in samples)
            self._cond.notify()

    def flush(self) -> None:
        """LoadGen's flush_queries: nothing is held back beyond max_wait, so nothing to do."""

    def stop(self) -> None:
        """End the run (after StartTest has returned) and join the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Nothing beyond stop(): the bucket runners belong to the session."""
        self.stop()

    def _take(self) -> list | None:
        with self._cond:
            while not self._queue and not self._stop:
                self._cond.wait()
            if not self._queue:
                return None
            if self._wait:
                deadline = self._queue[0][2] / 1e9 + self.max_wait_s
                while len(self._queue) < self.max_batch and not self._stop:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            ids, indices, issued = zip(*batch)
            try:
                scores, items = self._call(list(indices))
            except Exception as exc:  # noqa: BLE001 - complete the samples; the runner fails the cell with it
                self.completions.fail(list(ids), list(issued), f"{type(exc).__name__}: {exc}")
                continue
            self.completions.complete(list(ids), list(issued), scores.numpy(), items.numpy())
