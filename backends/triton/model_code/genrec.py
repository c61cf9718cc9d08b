"""Triton Python-backend model `genrec`: the generative recommender with torch, on CPU or GPU.

It rebuilds the same seeded model as the harness (`models.build_model(PRESET)`, the repo root comes in the
REPO_ROOT parameter), so the oracle's fp32 reference is this model's reference. The weights are cast to
PRECISION (no autocast, as the torch backend does). Every request the dynamic batcher hands to one execute()
runs as one batch: histories are padded to the longest, run together, and split back per request.

In: IDS [n, S] (ragged S across requests), LENGTHS [n, 1], for rank CONTEXT [n, F], CANDIDATES [n, C].
Out: CAND_SCORES [n, WIDTH] FP32, CAND_ITEMS [n, WIDTH] INT64, best first.
"""
import json
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TritonPythonModel:
    def initialize(self, args):
        params = {k: v["string_value"] for k, v in json.loads(args["model_config"]).get("parameters", {}).items()}
        if params["REPO_ROOT"] not in sys.path:
            sys.path.insert(0, params["REPO_ROOT"])
        import torch

        from models import build_model

        self.torch = torch
        gpu = args["model_instance_kind"] == "GPU"
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if gpu else "cpu")
        dtype = getattr(torch, DTYPES[params["PRECISION"]])
        model = build_model(params["PRESET"], kernel=params["KERNEL"]).variant(top_k=int(params["WIDTH"]))
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.phase = params["PHASE"]
        self.forward = getattr(self.model, self.phase)
        self.extra = ("CONTEXT", "CANDIDATES") if self.phase == "rank" else ()

    def execute(self, requests):
        try:
            return self._execute(requests)
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: every request hears why
            error = pb_utils.TritonError(f"genrec | {type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]

    def _execute(self, requests):
        torch = self.torch
        ids = [pb_utils.get_input_tensor_by_name(r, "IDS").as_numpy() for r in requests]
        width = max(a.shape[1] for a in ids)
        rows = [a.shape[0] for a in ids]
        padded = np.zeros((sum(rows), width), dtype=np.int64)
        start = 0
        for a in ids:
            padded[start:start + a.shape[0], : a.shape[1]] = a
            start += a.shape[0]
        lengths = np.concatenate([pb_utils.get_input_tensor_by_name(r, "LENGTHS").as_numpy() for r in requests])
        inputs = [padded, lengths.reshape(-1)]
        for name in self.extra:
            inputs.append(np.concatenate([pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]))
        with torch.inference_mode():
            tensors = [torch.from_numpy(x).to(self.device, non_blocking=True) for x in inputs]
            scores, items = self.forward(*tensors)
            scores = scores.float().cpu().numpy()
            items = items.cpu().numpy()
        responses, start = [], 0
        for n in rows:
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("CAND_SCORES", scores[start:start + n]),
                pb_utils.Tensor("CAND_ITEMS", items[start:start + n].astype(np.int64))]))
            start += n
        return responses
