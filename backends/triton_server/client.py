"""Requests to the served model through tritonclient, binary tensors only (no JSON payloads on the hot path).

gRPC carries tensors as raw bytes by construction; for HTTP every input and output is marked `binary_data`,
so the JSON header holds only names, shapes and byte sizes. tritonclient is imported here, lazily.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

PROTOCOLS = ("grpc", "http")


def module(protocol: str, aio: bool = False):
    """tritonclient.grpc / tritonclient.http (or their asyncio variants)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"triton | unknown protocol {protocol!r}; protocols: {', '.join(PROTOCOLS)}")
    return importlib.import_module(f"tritonclient.{protocol}{'.aio' if aio else ''}")


def request_arrays(target: str, drawn: dict, phase: str) -> dict[str, np.ndarray]:
    """The request's input tensors for `drawn` users. The ensemble takes raw histories (HISTORY: each user's
    whole history, overlong ones included, as wide as the longest; its preprocess cuts them to the model's
    window); genrec takes the window's padded IDS and LENGTHS [B, 1]. Rank adds CONTEXT and CANDIDATES."""
    if target == "ensemble":
        raw = drawn.get("raw_ids", drawn["ids"])
        width = max(int(drawn.get("raw_lengths", drawn["lengths"]).max()), 1)
        arrays = {"HISTORY": np.ascontiguousarray(raw.numpy()[:, :width].astype(np.int64))}
    else:
        lengths = drawn["lengths"].numpy().astype(np.int64)
        width = max(int(lengths.max()), 1)
        arrays = {
            "IDS": np.ascontiguousarray(drawn["ids"].numpy()[:, :width].astype(np.int64)),
            "LENGTHS": lengths.reshape(-1, 1),
        }
    if phase == "rank":
        arrays["CONTEXT"] = np.ascontiguousarray(drawn["context"].numpy().astype(np.int64))
        arrays["CANDIDATES"] = np.ascontiguousarray(drawn["candidates"].numpy().astype(np.int64))
    return arrays


def infer_args(mod, protocol: str, arrays: dict[str, np.ndarray], outputs) -> tuple[list, list]:
    """InferInput / InferRequestedOutput objects built once, reused by every request."""
    inputs = []
    for name, array in arrays.items():
        tensor = mod.InferInput(name, list(array.shape), "INT64")
        if protocol == "http":
            tensor.set_data_from_numpy(array, binary_data=True)
        else:
            tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    if protocol == "http":
        requested = [mod.InferRequestedOutput(name, binary_data=True) for name in outputs]
    else:
        requested = [mod.InferRequestedOutput(name) for name in outputs]
    return inputs, requested


class SyncClient:
    """A blocking client: one request at a time, what the per-request latency cells time."""

    def __init__(self, protocol: str, url: str):
        self.protocol = protocol
        self.mod = module(protocol)
        self.client = self.mod.InferenceServerClient(url=url)

    def call(self, model: str, arrays: dict[str, np.ndarray], outputs) -> Callable[[], tuple]:
        """The zero-argument closure: send one request, wait for it, return its (scores, items) arrays."""
        inputs, requested = infer_args(self.mod, self.protocol, arrays, outputs)
        infer, scores_name, items_name = self.client.infer, outputs[0], outputs[1]

        def run():
            result = infer(model, inputs, outputs=requested)
            return result.as_numpy(scores_name), result.as_numpy(items_name)

        return run

    def close(self) -> None:
        self.client.close()


def describe(protocol: str) -> str:
    if protocol == "grpc":
        return "tritonclient.grpc InferenceServerClient.infer (blocking), tensors as raw bytes"
    return "tritonclient.http InferenceServerClient.infer (blocking), binary_data tensors"
