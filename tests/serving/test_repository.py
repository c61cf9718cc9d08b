"""The model repository generator: names, configs (Python backend, ensemble, ONNX Runtime, TensorRT), read
back through Triton's own model-config protobuf as the server reads them."""

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from genrec_bench.backends.triton_server.repository import (
    EXPORTED_IO,
    exported_genrec_config,
    main,
    model_set,
    widths,
)
from genrec_bench.matrices.errors import BackendError
from genrec_bench.matrices.serving import ServingSpec, SweepSpec
from genrec_bench.models import preset

TINY = preset("tiny")


def parsed(text: str) -> pb.ModelConfig:
    return text_format.Parse(text, pb.ModelConfig())


def tensors(fields) -> dict:
    return {
        t.name: (
            pb.DataType.Name(t.data_type),
            list(t.dims),
            t.allow_ragged_batch if hasattr(t, "allow_ragged_batch") else None,
        )
        for t in fields
    }


SPEC = ServingSpec(max_batch_size=32, preferred_batch_sizes=(8, 16), max_queue_delay_us=250, instances=2)


def test_the_ensemble_layout():
    models = model_set(TINY, "prefill", "fp32", "torch", SPEC, gpu=True)
    names = [f"{models.prefix}_{s}" for s in ("preprocess", "genrec", "postprocess", "ensemble")]
    assert list(models.load_order) == names and models.entry == names[3]
    assert set(models.configs) == set(names) and set(models.code) == set(names[:3])
    assert models.outputs == ("SCORES", "ITEMS") and models.width == TINY.top_k
    assert [t.name for t in models.inputs] == ["HISTORY"]


def test_python_configs_carry_batching_instances_and_parameters():
    models = model_set(TINY, "prefill", "bf16", "torch", SPEC, gpu=True)
    genrec = parsed(models.configs[f"{models.prefix}_genrec"])
    assert genrec.backend == "python" and genrec.max_batch_size == 32
    assert list(genrec.dynamic_batching.preferred_batch_size) == [8, 16]
    assert genrec.dynamic_batching.max_queue_delay_microseconds == 250
    (group,) = genrec.instance_group
    assert (group.count, pb.ModelInstanceGroup.Kind.Name(group.kind), list(group.gpus)) == (
        2,
        "KIND_GPU",
        [0],
    )
    assert tensors(genrec.input)["IDS"] == ("TYPE_INT64", [-1], True)
    assert tensors(genrec.output)["CAND_SCORES"] == ("TYPE_FP32", [20], None)  # preselect 2 × k 10
    assert genrec.parameters["PRECISION"].string_value == "bf16"
    assert genrec.parameters["PRESET"].string_value == "tiny"
    pre = parsed(models.configs[f"{models.prefix}_preprocess"])
    # Pre/post processing stays on CPU, one instance, and never waits to fill a batch.
    (group,) = pre.instance_group
    assert (group.count, pb.ModelInstanceGroup.Kind.Name(group.kind)) == (1, "KIND_CPU")
    assert pre.dynamic_batching.max_queue_delay_microseconds == 0
    assert tensors(pre.input)["HISTORY"] == ("TYPE_INT64", [-1], True)


def test_the_ensemble_wires_the_steps():
    models = model_set(TINY, "rank", "fp32", "torch", SPEC, gpu=False)
    config = parsed(models.configs[models.entry])
    assert config.platform == "ensemble"
    assert [t.name for t in models.inputs] == ["HISTORY", "CONTEXT", "CANDIDATES"]
    p = models.prefix
    pre, genrec, post = config.ensemble_scheduling.step
    assert (pre.model_name, pre.model_version) == (f"{p}_preprocess", -1)
    assert dict(pre.input_map) == {"HISTORY": "HISTORY"} and dict(pre.output_map) == {
        "IDS": "ids",
        "LENGTHS": "lengths",
    }
    # Rank's context and candidates skip preprocess and go straight to genrec.
    assert genrec.model_name == f"{p}_genrec" and genrec.input_map["CANDIDATES"] == "CANDIDATES"
    assert dict(post.output_map) == {"SCORES": "SCORES", "ITEMS": "ITEMS"}
    k, width = widths(TINY, "rank", SPEC.preselect)
    assert (k, width) == (10, 16)  # rank scores the 16 candidates: preselect is capped by them


def test_a_field_the_server_would_refuse_fails_when_the_config_is_built():
    from genrec_bench.backends.triton_server.repository import Tensor, python_config

    with pytest.raises(ValueError, match="TYPE_INT65"):
        python_config("m", SPEC, (Tensor("X", "INT65", (1,)),), (), {}, "KIND_CPU", 1, queue_delay_us=0)
    with pytest.raises(ValueError, match="KIND_TPU"):
        python_config("m", SPEC, (), (), {}, "KIND_TPU", 1, queue_delay_us=0)


def test_names_follow_what_changes_the_deployment():
    a = model_set(TINY, "prefill", "fp32", "torch", SPEC, gpu=False)
    assert (
        a.prefix
        == model_set(
            TINY,
            "prefill",
            "fp32",
            "torch",
            ServingSpec(**{**SPEC.__dict__, "sweep": SweepSpec((9,))}),
            gpu=False,
        ).prefix
    )
    assert a.prefix.startswith("tiny_fp32_prefill_torch_")
    for other in (
        model_set(TINY, "prefill", "fp16", "torch", SPEC, gpu=False),
        model_set(TINY, "prefill", "fp32", "torch", SPEC, gpu=True),
        model_set(TINY, "prefill", "fp32", "torch", ServingSpec(max_batch_size=8), gpu=False),
    ):
        assert other.prefix != a.prefix


def test_the_genrec_target_serves_genrec_alone():
    models = model_set(TINY, "prefill", "fp32", "torch", ServingSpec(target="genrec"), gpu=False)
    assert models.load_order == (models.entry,) and models.entry.endswith("_genrec")
    assert models.outputs == ("CAND_SCORES", "CAND_ITEMS") and models.width == 20
    assert [t.name for t in models.inputs] == ["IDS", "LENGTHS"]


def test_decode_is_refused_with_the_reason():
    with pytest.raises(BackendError, match="decode needs a server-side KV cache"):
        model_set(TINY, "decode", "fp32", "torch", SPEC, gpu=False)


def test_onnxruntime_config():
    config = parsed(exported_genrec_config("g", "onnxruntime", TINY, "prefill", SPEC, gpu=True))
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 32
    assert tensors(config.input)["ids"] == ("TYPE_INT64", [-1], False)
    # The graph's lengths is [B]: declared [1] per request and reshaped to a scalar.
    lengths = next(t for t in config.input if t.name == "lengths")
    assert list(lengths.dims) == [1] and lengths.HasField("reshape") and list(lengths.reshape.shape) == []
    assert tensors(config.output)["scores"] == ("TYPE_FP32", [20], None)
    assert pb.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_GPU"
    assert config.dynamic_batching.max_queue_delay_microseconds == 250
    cpu = parsed(exported_genrec_config("g", "onnxruntime", TINY, "prefill", SPEC, gpu=False))
    assert pb.ModelInstanceGroup.Kind.Name(cpu.instance_group[0].kind) == "KIND_CPU"


def test_tensorrt_config():
    config = parsed(exported_genrec_config("g", "tensorrt", TINY, "rank", SPEC, gpu=False))
    assert config.platform == "tensorrt_plan"
    assert pb.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_GPU"  # a plan needs a GPU
    assert tensors(config.input)["candidates"][1] == [16] and tensors(config.input)["context"][1] == [3]
    with pytest.raises(BackendError, match="choose onnxruntime or tensorrt"):
        exported_genrec_config("g", "tflite", TINY, "rank", SPEC, gpu=False)


def test_the_cli_writes_a_repository_for_an_external_server(tmp_path, capsys):
    assert main(["--model", "tiny", "--out", str(tmp_path), "--genrec-backend", "onnxruntime"]) == 0
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 4
    genrec = next(p for p in tmp_path.iterdir() if p.name.endswith("_genrec"))
    assert not (genrec / "1" / "model.py").exists()
    assert parsed((genrec / "config.pbtxt").read_text()).platform == "onnxruntime_onnx"
    ensemble = next(p for p in tmp_path.iterdir() if p.name.endswith("_ensemble"))
    step = parsed((ensemble / "config.pbtxt").read_text()).ensemble_scheduling.step[1]
    assert step.input_map[EXPORTED_IO["IDS"]] == "ids"
    pre = next(p for p in tmp_path.iterdir() if p.name.endswith("_preprocess"))
    assert "class TritonPythonModel" in (pre / "1" / "model.py").read_text()
    assert "model.onnx" in capsys.readouterr().out
