"""How a System Under Test answers LoadGen: QuerySamplesComplete with each sample's answer, the per-sample
latency the SUT saw, and the first error.

In accuracy mode each response carries the sample's top-k as bytes (k int64 items, then k float32 scores),
which LoadGen writes into mlperf_log_accuracy.json for accuracy.py; in performance mode responses carry no
data. A failed call still completes its samples (empty), or LoadGen would wait for them forever; the run is
then failed by the runner with the first error.

LoadGen keeps a thread-local logger per thread that calls it, and a short-lived thread that exits while its
logger is being read crashes the process (a known LoadGen race): every SUT calls QuerySamplesComplete from
threads that live until StartTest has returned.
"""

from __future__ import annotations

import threading
import time

import numpy as np

ITEM_BYTES, SCORE_BYTES = 8, 4


def encode(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[n, k] scores and items → [n, 12k] bytes: each row is one sample's response data."""
    items = np.ascontiguousarray(items, dtype="<i8").view(np.uint8)
    scores = np.ascontiguousarray(scores, dtype="<f4").view(np.uint8)
    return np.ascontiguousarray(np.concatenate([items, scores], axis=1))


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One sample's response bytes → (scores [k], items [k])."""
    k = len(data) // (ITEM_BYTES + SCORE_BYTES)
    if k == 0 or len(data) != k * (ITEM_BYTES + SCORE_BYTES):
        raise ValueError(f"a response of {len(data)} bytes is not k int64 items followed by k float32 scores")
    items = np.frombuffer(data, dtype="<i8", count=k)
    scores = np.frombuffer(data, dtype="<f4", count=k, offset=k * ITEM_BYTES)
    return scores, items


class Completions:
    """The SUT's side of a run: answers LoadGen and keeps what it saw (latencies, call sizes, errors)."""

    def __init__(self, lg, accuracy: bool):
        self.lg, self.accuracy = lg, accuracy
        self.latencies_ns: list[int] = []
        self.call_sizes: list[int] = []
        self.errors = 0
        self.first_error: str | None = None
        self.wall_s = 0.0  # how long the run took (set by the runner)
        self._lock = threading.Lock()

    def complete(self, ids: list[int], issued_ns: list[int], scores=None, items=None) -> None:
        """Answer samples `ids` (issued at `issued_ns`) with rows of `scores`/`items` [n, k] (accuracy
        mode)."""
        lg = self.lg
        if self.accuracy and scores is not None:
            payload = encode(np.asarray(scores)[: len(ids)], np.asarray(items)[: len(ids)])
            base, row = payload.ctypes.data, payload.shape[1]
            responses = [lg.QuerySampleResponse(q, base + i * row, row) for i, q in enumerate(ids)]
        else:
            payload, responses = None, [lg.QuerySampleResponse(q, 0, 0) for q in ids]
        done = time.perf_counter_ns()
        lg.QuerySamplesComplete(responses)  # LoadGen copies the data before returning: payload may go after
        del payload
        with self._lock:
            self.latencies_ns.extend(done - t for t in issued_ns)
            self.call_sizes.append(len(ids))

    def fail(self, ids: list[int], issued_ns: list[int], error: str) -> None:
        """Complete samples whose call failed, and remember the first failure."""
        with self._lock:
            self.errors += 1
            self.first_error = self.first_error or error
        self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(q, 0, 0) for q in ids])

    def latencies_ms(self) -> list[float]:
        return [t / 1e6 for t in self.latencies_ns]
