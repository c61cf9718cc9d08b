"""Triton Python-backend model `postprocess`: genrec's candidates → the response's top-k items and scores.

CAND_SCORES [n, W] FP32, CAND_ITEMS [n, W] INT64 → SCORES [n, TOP_K] FP32, ITEMS [n, TOP_K] INT64, best first
(a stable sort: equal scores keep genrec's order). Runs under numpy < 2 (the stub's).
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.k = int(params["TOP_K"]["string_value"])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                scores = pb_utils.get_input_tensor_by_name(request, "CAND_SCORES").as_numpy()
                items = pb_utils.get_input_tensor_by_name(request, "CAND_ITEMS").as_numpy()
                order = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor(
                                "SCORES", np.take_along_axis(scores, order, 1).astype(np.float32)
                            ),
                            pb_utils.Tensor("ITEMS", np.take_along_axis(items, order, 1).astype(np.int64)),
                        ]
                    )
                )
            except Exception as exc:  # noqa: BLE001 - the request answers with its error
                responses.append(
                    pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"postprocess | {type(exc).__name__}: {exc}")
                    )
                )
        return responses
