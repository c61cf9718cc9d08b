"""Exported graphs: names, dynamic axes, I/O types, agreement with torch at other shapes, and export
failures."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from genrec_bench.models import PHASE_INPUTS, draw, phase_inputs, preset
from genrec_bench.models.onnx_export import OPSET, ExportError, export_fields, export_phase, exported_model


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_prefill_export_is_self_contained_with_dynamic_batch_and_seq(tiny_prefill):
    model = onnx.load(str(tiny_prefill.path))  # no external data: loading needs nothing beside the file
    onnx.checker.check_model(model)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)
    assert {op.domain: op.version for op in model.opset_import}[""] == OPSET
    inputs = {i.name: _dims(i) for i in model.graph.input}
    outputs = {o.name: _dims(o) for o in model.graph.output}
    assert list(inputs) == ["ids", "lengths"] and list(outputs) == ["scores", "items"]
    batch, seq = inputs["ids"]
    assert isinstance(batch, str) and isinstance(seq, str) and inputs["lengths"] == [batch]
    assert outputs["scores"] == [batch, preset("tiny").top_k]


@pytest.mark.parametrize("batch, seq_len", [(1, 64), (7, 3), (33, 32)])
def test_prefill_export_matches_torch_at_other_shapes(tiny, tiny_prefill, batch, seq_len):
    session = ort.InferenceSession(str(tiny_prefill.path), providers=["CPUExecutionProvider"])
    inputs = phase_inputs(tiny, "prefill", draw(tiny.cfg, "prefill", batch, seq_len, seed=batch))
    scores, items = session.run(None, {n: t.numpy() for n, t in zip(PHASE_INPUTS["prefill"], inputs)})
    with torch.inference_mode():
        ref_scores, ref_items = tiny.prefill(*inputs)
    np.testing.assert_allclose(scores, ref_scores.numpy(), rtol=1e-4, atol=1e-5)
    assert (items == ref_items.numpy()).mean() > 0.99


def test_fp16_decode_keeps_io_types_sane(tiny):
    """fp16 graph: fp16 KV cache in, fp16 scores out, int64 ids/lengths/items; and it agrees with torch
    fp16."""
    export = exported_model(tiny, "decode", "fp16")
    session = ort.InferenceSession(str(export.path), providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in session.get_inputs()} | {o.name: o.type for o in session.get_outputs()}
    assert types == {
        "new_ids": "tensor(int64)",
        "lengths": "tensor(int64)",
        "k_cache": "tensor(float16)",
        "v_cache": "tensor(float16)",
        "scores": "tensor(float16)",
        "items": "tensor(int64)",
    }
    k_shape = [d for d in session.get_inputs()[2].shape]
    assert isinstance(k_shape[1], str) and isinstance(k_shape[3], str)  # batch and cache length are dynamic
    inputs = phase_inputs(tiny, "decode", draw(tiny.cfg, "decode", 6, 20, seed=3), "cpu", torch.float16)
    scores, items = session.run(None, {n: t.numpy() for n, t in zip(PHASE_INPUTS["decode"], inputs)})
    with torch.inference_mode():
        ref_scores, _ = tiny.decode(*inputs[:2], *(t.float() for t in inputs[2:]))
    assert scores.dtype == np.float16 and items.dtype == np.int64
    np.testing.assert_allclose(scores.astype(np.float32), ref_scores.numpy(), rtol=2e-2, atol=2e-2)


def test_cache_key_fields_name_config_phase_precision_opset_and_versions(tiny):
    fields = export_fields(tiny.cfg, "rank", "fp16")
    assert fields["fingerprint"] == tiny.cfg.fingerprint() and fields["opset"] == OPSET
    assert {"phase", "precision", "exporter", "torch", "onnx", "onnxscript", "sources"} <= set(fields)
    assert export_fields(tiny.cfg, "rank", "fp32") != fields


def test_second_request_never_exports_again(tiny, tiny_prefill, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported twice")

    monkeypatch.setattr("genrec_bench.models.onnx_export.export_phase", no_export)
    again = exported_model(tiny, "prefill", "fp32")
    assert not again.built and again.path == tiny_prefill.path


def _unexportable(model):
    """The tiny model whose prefill uses an op the ONNX exporter has no translation for."""
    broken = model.variant()
    broken.prefill = lambda ids, lengths: (torch.linalg.eigh(ids.float() @ ids.float().T)[0], ids)
    return broken


def test_export_failure_is_one_line_with_the_root_cause(tiny, tmp_path):
    with pytest.raises(ExportError) as err:
        export_phase(_unexportable(tiny), "prefill", "fp32", tmp_path / "x.onnx")
    message = str(err.value)
    assert message.startswith("onnx-export | tiny/prefill/fp32: torch.export (non-strict) → ONNX failed: ")
    assert "_linalg_eigh" in message and "\n" not in message and len(message) < 500


def test_bf16_is_refused_with_the_reason(tiny, tmp_path):
    with pytest.raises(ExportError, match="precision 'bf16' is not exported; exported: fp32, fp16"):
        export_phase(tiny, "prefill", "bf16", tmp_path / "x.onnx")


def test_fp32_and_fp16_export_the_same_stated_way_even_from_inference_tensors(tmp_path):
    """A model first built under torch.inference_mode (as one built by an inference-mode caller) has inference
    tensors as weights; both precisions still export through non-strict torch.export, with no silent retry."""
    import torch

    from genrec_bench.models import build_model
    from genrec_bench.models.onnx_export import export_phase

    with torch.inference_mode():
        model = build_model("tiny")
    assert model.item_emb.weight.is_inference()
    for precision in ("fp32", "fp16"):
        extra = export_phase(model, "prefill", precision, tmp_path / f"{precision}.onnx")
        assert (
            extra["capture"] == "torch.export.export(strict=False), then torch.onnx.export(ExportedProgram)"
        )
