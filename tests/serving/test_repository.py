"""The model repository generator: names, config texts (Python backend, ensemble, ONNX Runtime, TensorRT)."""
import pytest

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
    genrec = models.configs[f"{models.prefix}_genrec"]
    assert 'backend: "python"' in genrec and "max_batch_size: 32" in genrec
    assert "dynamic_batching { preferred_batch_size: [ 8, 16 ] max_queue_delay_microseconds: 250 }" in genrec
    assert "instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0 ] } ]" in genrec
    assert '{ name: "IDS" data_type: TYPE_INT64 dims: [ -1 ] allow_ragged_batch: true }' in genrec
    assert '{ name: "CAND_SCORES" data_type: TYPE_FP32 dims: [ 20 ] }' in genrec  # preselect 2 × k 10
    assert 'parameters { key: "PRECISION" value: { string_value: "bf16" } }' in genrec
    assert 'parameters { key: "PRESET" value: { string_value: "tiny" } }' in genrec
    pre = models.configs[f"{models.prefix}_preprocess"]
    # Pre/post processing stays on CPU, one instance, and never waits to fill a batch.
    assert "kind: KIND_CPU" in pre and "count: 1" in pre and "max_queue_delay_microseconds: 0" in pre
    assert '{ name: "HISTORY" data_type: TYPE_INT64 dims: [ -1 ] allow_ragged_batch: true }' in pre


def test_the_ensemble_wires_the_steps():
    models = model_set(TINY, "rank", "fp32", "torch", SPEC, gpu=False)
    text = models.configs[models.entry]
    assert 'platform: "ensemble"' in text
    assert [t.name for t in models.inputs] == ["HISTORY", "CONTEXT", "CANDIDATES"]
    p = models.prefix
    assert (f'{{ model_name: "{p}_preprocess" model_version: -1 input_map {{ key: "HISTORY" value: "HISTORY" }} '
            f'output_map {{ key: "IDS" value: "ids" }} output_map {{ key: "LENGTHS" value: "lengths" }} }}') in text
    # Rank's context and candidates skip preprocess and go straight to genrec.
    assert 'input_map { key: "CANDIDATES" value: "CANDIDATES" }' in text.split(f"{p}_genrec")[1]
    assert 'output_map { key: "SCORES" value: "SCORES" }' in text
    k, width = widths(TINY, "rank", SPEC.preselect)
    assert (k, width) == (10, 16)  # rank scores the 16 candidates: preselect is capped by them


def test_names_follow_what_changes_the_deployment():
    a = model_set(TINY, "prefill", "fp32", "torch", SPEC, gpu=False)
    assert a.prefix == model_set(TINY, "prefill", "fp32", "torch",
                                 ServingSpec(**{**SPEC.__dict__, "sweep": SweepSpec((9,))}), gpu=False).prefix
    assert a.prefix.startswith("tiny_fp32_prefill_torch_")
    for other in (model_set(TINY, "prefill", "fp16", "torch", SPEC, gpu=False),
                  model_set(TINY, "prefill", "fp32", "torch", SPEC, gpu=True),
                  model_set(TINY, "prefill", "fp32", "torch", ServingSpec(max_batch_size=8), gpu=False)):
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
    text = exported_genrec_config("g", "onnxruntime", TINY, "prefill", SPEC, gpu=True)
    assert 'platform: "onnxruntime_onnx"' in text and "max_batch_size: 32" in text
    assert '{ name: "ids" data_type: TYPE_INT64 dims: [ -1 ] }' in text
    # The graph's lengths is [B]: declared [1] per request and reshaped to a scalar.
    assert '{ name: "lengths" data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [  ] } }' in text
    assert '{ name: "scores" data_type: TYPE_FP32 dims: [ 20 ] }' in text
    assert "kind: KIND_GPU" in text and "max_queue_delay_microseconds: 250" in text
    assert "kind: KIND_CPU" in exported_genrec_config("g", "onnxruntime", TINY, "prefill", SPEC, gpu=False)


def test_tensorrt_config():
    text = exported_genrec_config("g", "tensorrt", TINY, "rank", SPEC, gpu=False)
    assert 'platform: "tensorrt_plan"' in text and "kind: KIND_GPU" in text  # a plan only runs on a GPU
    assert '{ name: "candidates" data_type: TYPE_INT64 dims: [ 16 ] }' in text
    assert '{ name: "context" data_type: TYPE_INT64 dims: [ 3 ] }' in text
    with pytest.raises(BackendError, match="choose onnxruntime or tensorrt"):
        exported_genrec_config("g", "tflite", TINY, "rank", SPEC, gpu=False)


def test_the_cli_writes_a_repository_for_an_external_server(tmp_path, capsys):
    assert main(["--model", "tiny", "--out", str(tmp_path), "--genrec-backend", "onnxruntime"]) == 0
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 4
    genrec = next(p for p in tmp_path.iterdir() if p.name.endswith("_genrec"))
    assert not (genrec / "1" / "model.py").exists()
    assert 'platform: "onnxruntime_onnx"' in (genrec / "config.pbtxt").read_text()
    ensemble = next(p for p in tmp_path.iterdir() if p.name.endswith("_ensemble"))
    assert f'input_map {{ key: "{EXPORTED_IO["IDS"]}" value: "ids" }}' in (ensemble / "config.pbtxt").read_text()
    pre = next(p for p in tmp_path.iterdir() if p.name.endswith("_preprocess"))
    assert "class TritonPythonModel" in (pre / "1" / "model.py").read_text()
    assert "model.onnx" in capsys.readouterr().out
