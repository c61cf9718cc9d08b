"""Triton Python-backend model `preprocess`: raw user histories → padded item ids + lengths.

HISTORY [n, L] INT64 holds each user's items oldest first, right-padded with 0 (item 0 is padding; a batch-1
request sends exactly the user's items). Out: IDS [n, S] right-padded, S = the longest kept history (at most
MAX_SEQ_LEN: longer histories keep their latest items), LENGTHS [n, 1]. Runs under numpy < 2 (the stub's).
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.max_len = int(params["MAX_SEQ_LEN"]["string_value"])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                history = pb_utils.get_input_tensor_by_name(request, "HISTORY").as_numpy()
                ids, lengths = self.pad(history)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[pb_utils.Tensor("IDS", ids), pb_utils.Tensor("LENGTHS", lengths)]
                    )
                )
            except Exception as exc:  # noqa: BLE001 - one bad request answers with its error; the others still run
                responses.append(
                    pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"preprocess | {type(exc).__name__}: {exc}")
                    )
                )
        return responses

    def pad(self, history):
        if history.ndim != 2:
            raise ValueError(f"HISTORY must be [n, L], got shape {list(history.shape)}")
        if (history < 0).any():
            raise ValueError("HISTORY holds negative item ids")
        real = history != 0
        lengths = real.sum(axis=1)
        # Right padding means the real items form a prefix; anything else is a malformed request.
        if not (np.cumsum(~real, axis=1)[real] == 0).all():
            raise ValueError("HISTORY rows must be right-padded: a 0 (padding) before a real item")
        keep = np.minimum(lengths, self.max_len)
        width = max(int(keep.max()) if keep.size else 0, 1)
        ids = np.zeros((history.shape[0], width), dtype=np.int64)
        for row, (n, k) in enumerate(zip(lengths, keep)):
            ids[row, :k] = history[row, n - k : n]
        return ids, keep.astype(np.int64).reshape(-1, 1)
