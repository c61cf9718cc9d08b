"""The Python-backend model files, run in-process against a stand-in `triton_python_backend_utils`: padding,
batching several requests in one execute(), splitting the answers back, errors per request, and the CUDA-graph
replay path (with a CPU stand-in for the graph), all against the harness's own model."""

import importlib.util
import json
import sys
import types

import numpy as np
import pytest
import torch
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from genrec_bench.backends.triton_server.repository import MODEL_CODE, model_set
from genrec_bench.matrices.serving import ServingSpec
from genrec_bench.models import build_model, draw, preset


class Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, np.asarray(array)

    def as_numpy(self):
        return self.array


class Response:
    def __init__(self, output_tensors=(), error=None):
        self.outputs = {t.name: t.array for t in output_tensors}
        self.error = error


@pytest.fixture
def pb_utils(monkeypatch, tmp_path):
    mod = types.ModuleType("triton_python_backend_utils")
    mod.repository = tmp_path  # where the models' folders are (model.py writes its provenance there)
    mod.Tensor, mod.InferenceResponse = Tensor, Response
    mod.TritonError = lambda message: message
    mod.get_input_tensor_by_name = lambda request, name: request.get(name)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", mod)
    return mod


def load(pb_utils, step, spec=None, phase="prefill"):
    spec = spec or ServingSpec()
    models = model_set(preset("tiny"), phase, "fp32", "torch", spec, gpu=False)
    # The model config as the server hands it to initialize(): its JSON form (protobuf field names).
    config = text_format.Parse(models.configs[f"{models.prefix}_{step}"], model_config_pb2.ModelConfig())
    params = json_format.MessageToDict(config, preserving_proto_field_name=True)["parameters"]
    spec_ = importlib.util.spec_from_file_location(f"model_{step}", MODEL_CODE / f"{step}.py")
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    model = module.TritonPythonModel()
    folder = pb_utils.repository / f"{models.prefix}_{step}"  # the model's folder in a repository
    (folder / "1").mkdir(parents=True, exist_ok=True)
    model.initialize(
        {
            "model_config": json.dumps({"parameters": params}),
            "model_instance_kind": "CPU",
            "model_instance_device_id": "0",
            "model_repository": str(folder),
            "model_version": "1",
        }
    )
    model.folder = folder
    return model


def requests_for(drawn, sizes):
    ids, lengths, out, start = drawn["ids"].numpy(), drawn["lengths"].numpy(), [], 0
    for n in sizes:
        width = int(lengths[start : start + n].max())
        out.append({"HISTORY": Tensor("HISTORY", ids[start : start + n, :width])})
        start += n
    return out


def test_ensemble_steps_match_the_model(pb_utils):
    drawn = draw(preset("tiny"), "prefill", 5, 32, seed=3)
    pre, genrec, post = load(pb_utils, "preprocess"), load(pb_utils, "genrec"), load(pb_utils, "postprocess")
    requests = requests_for(drawn, [2, 1, 2])  # one execute() with three requests of different widths
    stage1 = pre.execute(requests)
    stage2 = genrec.execute(
        [
            {"IDS": Tensor("IDS", r.outputs["IDS"]), "LENGTHS": Tensor("L", r.outputs["LENGTHS"])}
            for r in stage1
        ]
    )
    stage3 = post.execute([{k: Tensor(k, v) for k, v in r.outputs.items()} for r in stage2])
    scores = np.concatenate([r.outputs["SCORES"] for r in stage3])
    items = np.concatenate([r.outputs["ITEMS"] for r in stage3])
    ref_scores, ref_items = build_model("tiny").prefill(drawn["ids"], drawn["lengths"])
    np.testing.assert_allclose(scores, ref_scores.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(items, ref_items.numpy())
    assert [r.outputs["SCORES"].shape for r in stage3] == [(2, 10), (1, 10), (2, 10)]


def test_preprocess_keeps_the_latest_items_and_refuses_bad_rows(pb_utils):
    pre = load(pb_utils, "preprocess")
    long = np.arange(1, 101, dtype=np.int64).reshape(1, -1)  # 100 items, tiny keeps 64
    ok, holes, negative = pre.execute(
        [
            {"HISTORY": Tensor("H", long)},
            {"HISTORY": Tensor("H", np.array([[3, 0, 4]]))},
            {"HISTORY": Tensor("H", np.array([[-1]]))},
        ]
    )
    assert ok.outputs["LENGTHS"].tolist() == [[64]] and ok.outputs["IDS"][0, 0] == 37
    assert "right-padded" in holes.error and "negative" in negative.error


def test_genrec_graph_replay_matches_eager(pb_utils, monkeypatch):
    """The replay path (staging, buckets, stale rows, splitting) with a stand-in graph that recomputes."""
    genrec = load(pb_utils, "genrec", ServingSpec(max_batch_size=4))
    forward = genrec.forward

    class FakeGraph:
        def __init__(self, static, out):
            self.static, self.out = static, out

        def replay(self):
            scores, items = forward(*self.static)
            self.out[0].copy_(scores)
            self.out[1].copy_(items)

    for b in (1, 2, 4):
        static = [torch.zeros(b, genrec.max_len, dtype=torch.int64), torch.ones(b, dtype=torch.int64)]
        out = [torch.zeros(b, 20), torch.zeros(b, 20, dtype=torch.int64)]
        host_in, host_out = [t.clone() for t in static], [t.clone() for t in out]
        genrec.graphs[b] = (
            FakeGraph(static, out),
            static,
            out,
            host_in,
            host_out,
            [t.numpy() for t in host_in],
            [t.numpy() for t in host_out],
        )
    monkeypatch.setattr(
        torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(synchronize=lambda: None)
    )
    drawn = draw(preset("tiny"), "prefill", 3, 32, seed=5)
    ids, lengths = drawn["ids"].numpy(), drawn["lengths"].numpy()

    def reqs(rows):
        return [
            {
                "IDS": Tensor("IDS", ids[r : r + 1, : lengths[r]]),
                "LENGTHS": Tensor("L", lengths[r : r + 1, None]),
            }
            for r in rows
        ]

    genrec.execute(reqs([0, 1, 2]))  # bucket 4: fills rows 0-2
    replayed = genrec.execute(reqs([2, 0, 1]))  # again bucket 4, other order
    single = genrec.execute(reqs([1]))  # bucket 1
    ref_scores, ref_items = build_model("tiny").variant(top_k=20).prefill(drawn["ids"], drawn["lengths"])
    for response, row in zip(replayed + single, [2, 0, 1, 1]):
        np.testing.assert_allclose(
            response.outputs["CAND_SCORES"][0], ref_scores[row].detach().numpy(), rtol=1e-5
        )
        np.testing.assert_array_equal(response.outputs["CAND_ITEMS"][0], ref_items[row].numpy())


def test_genrec_writes_what_it_really_computes_with(pb_utils):
    genrec = load(pb_utils, "genrec", phase="rank")
    info = json.loads((genrec.folder / "1" / "provenance.json").read_text())
    assert info == {
        "output_dtype": "float32",
        "kernels": {"interaction:torch": 1, "jagged_pooling:torch": 1},
        "device": "cpu",
    }
