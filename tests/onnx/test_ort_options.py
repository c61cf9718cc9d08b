"""Session options, provider lists and TensorRT provider options: pure functions of the cell and the
matrix."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from genrec_bench.backends.ort_options import (
    CPU_EP,
    CUDA_EP,
    TRT_EP,
    SessionSpec,
    cuda_provider_options,
    phase_shapes,
    provider_list,
    session_spec,
    shape_range,
    trt_engine_dir,
    trt_profile_shapes,
    trt_provider_options,
)
from genrec_bench.matrices.cells import Cell
from genrec_bench.models import preset

SMALL = preset("small")
SHA = "ab" * 32


def cell(phase="prefill", precision="fp16", batch=16, seq_len=256, model="small"):
    return Cell(
        model=model,
        backend="ort-trt",
        mode="eager",
        precision=precision,
        batch=batch,
        seq_len=seq_len,
        phase=phase,
    )


def test_session_spec_uses_torch_threads_unless_the_environment_says():
    assert session_spec(6, env={}) == SessionSpec(intra_op_num_threads=6)
    assert session_spec(6, env={"GENREC_ORT_THREADS": "2"}).intra_op_num_threads == 2
    with pytest.raises(ValueError, match="GENREC_ORT_THREADS='0' is not a positive integer"):
        session_spec(6, env={"GENREC_ORT_THREADS": "0"})


def test_session_spec_applies_to_real_session_options():
    spec = SessionSpec(intra_op_num_threads=3)
    opts = spec.to_ort(ort)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert spec.as_dict() == {
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_num_threads": 3,
        "inter_op_num_threads": 1,
        "execution_mode": "ORT_SEQUENTIAL",
    }


def test_provider_lists_never_hide_a_gpu_provider_behind_cpu():
    assert provider_list("ort-cpu") == [CPU_EP]
    assert provider_list("ort-cuda") == [(CUDA_EP, cuda_provider_options(0))]
    assert cuda_provider_options(0)["use_tf32"] == "0"
    trt = provider_list("ort-trt", trt_options={"trt_fp16_enable": "True"})
    assert [p for p, _ in trt] == [TRT_EP, CUDA_EP]
    with pytest.raises(ValueError, match="needs trt_options"):
        provider_list("ort-trt")
    with pytest.raises(ValueError, match="unknown ORT backend 'ort-x'"):
        provider_list("ort-x")


@pytest.mark.parametrize(
    "phase, expected",
    [
        ("prefill", {"ids": (4, 256), "lengths": (4,)}),
        (
            "decode",
            {"new_ids": (4,), "lengths": (4,), "k_cache": (2, 4, 4, 256, 32), "v_cache": (2, 4, 4, 256, 32)},
        ),
        ("rank", {"ids": (4, 256), "lengths": (4,), "context": (4, 4), "candidates": (4, 128)}),
    ],
)
def test_phase_shapes_follow_phase_inputs(phase, expected):
    assert phase_shapes(SMALL, phase, 4, 256) == expected


def test_shape_range_covers_the_cells_that_share_an_engine():
    matrix = [cell(batch=b, seq_len=s) for b in (1, 16, 256) for s in (128, 256)]
    matrix += [cell(batch=1024, precision="fp32"), cell(batch=512, phase="rank")]  # other engines
    assert shape_range(matrix, cell(batch=16)) == ((1, 256), (128, 256))
    assert shape_range([], cell(batch=16, seq_len=64)) == ((16, 16), (64, 64))


def test_profile_shapes_min_opt_max():
    shapes = trt_profile_shapes(SMALL, cell(phase="decode", batch=16), (1, 256), (256, 256))
    assert shapes["trt_profile_min_shapes"] == (
        "new_ids:1,lengths:1,k_cache:2x1x4x256x32,v_cache:2x1x4x256x32"
    )
    assert shapes["trt_profile_opt_shapes"].startswith("new_ids:16,lengths:16,k_cache:2x16x4x256x32")
    assert shapes["trt_profile_max_shapes"].endswith("v_cache:2x256x4x256x32")
    rank = trt_profile_shapes(SMALL, cell(phase="rank", batch=16, seq_len=64), (1, 256), (32, 256))
    assert rank["trt_profile_min_shapes"] == "ids:1x32,lengths:1,context:1x4,candidates:1x128"
    assert rank["trt_profile_opt_shapes"] == "ids:16x64,lengths:16,context:16x4,candidates:16x128"


@pytest.mark.parametrize(
    "batch_range, seq_range, message",
    [
        ((32, 256), (256, 256), "does not hold the cell's batch 16"),
        ((1, 256), (1, 128), "does not hold the cell's seq_len 256"),
        ((1, 256), (1, 512), "passes small's max_seq_len=256"),
    ],
)
def test_profile_range_must_hold_the_cell(batch_range, seq_range, message):
    with pytest.raises(ValueError, match=message):
        trt_profile_shapes(SMALL, cell(), batch_range, seq_range)


@pytest.mark.parametrize("precision, fp16", [("fp32", "False"), ("fp16", "True")])
def test_trt_precision_flags_and_caches(tmp_path, precision, fp16):
    opts = trt_provider_options(
        SMALL,
        cell(precision=precision),
        onnx_sha256=SHA,
        cache_root=tmp_path,
        batch_range=(1, 256),
        seq_range=(256, 256),
    )
    assert opts["trt_fp16_enable"] == fp16 and opts["trt_int8_enable"] == "False"
    assert "trt_int8_calibration_table_name" not in opts
    assert opts["trt_engine_cache_enable"] == "True" and opts["trt_timing_cache_enable"] == "True"
    engines = Path(opts["trt_engine_cache_path"])
    assert (
        engines.parent == tmp_path / "trt"
        and Path(opts["trt_timing_cache_path"]) == tmp_path / "trt" / "timing"
    )
    assert engines.name == f"small-prefill-{precision}-{SHA[:12]}-b1-256-s256-256"
    assert opts["trt_profile_opt_shapes"] == "ids:16x256,lengths:16"


def test_engine_dir_changes_with_the_export_and_the_range(tmp_path):
    base = trt_engine_dir(tmp_path, cell(), SHA, (1, 256), (256, 256))
    assert trt_engine_dir(tmp_path, cell(), "cd" * 32, (1, 256), (256, 256)) != base
    assert trt_engine_dir(tmp_path, cell(), SHA, (1, 512), (256, 256)) != base


def test_int8_needs_a_calibration_table(tmp_path):
    kwargs = {"onnx_sha256": SHA, "cache_root": tmp_path, "batch_range": (1, 256), "seq_range": (256, 256)}
    with pytest.raises(ValueError, match="int8=True needs int8_calibration_table"):
        trt_provider_options(SMALL, cell(), int8=True, **kwargs)
    opts = trt_provider_options(
        SMALL, cell(), int8=True, int8_calibration_table=tmp_path / "calib.cache", **kwargs
    )
    assert opts["trt_int8_enable"] == "True" and opts["trt_fp16_enable"] == "True"
    assert opts["trt_int8_calibration_table_name"] == str(tmp_path / "calib.cache")


def test_bf16_has_no_trt_options(tmp_path):
    with pytest.raises(ValueError, match="precision 'bf16' has no ONNX export"):
        trt_provider_options(
            SMALL,
            cell(precision="bf16"),
            onnx_sha256=SHA,
            cache_root=tmp_path,
            batch_range=(1, 256),
            seq_range=(256, 256),
        )


def test_ort_trt_sizes_its_profile_from_the_peer_cells_of_its_run_context():
    from types import SimpleNamespace

    from genrec_bench.backends import get_backend
    from genrec_bench.backends.base import RunContext
    from genrec_bench.models import preset

    backend = get_backend("ort-trt")
    cell = Cell("small", "ort-trt", "eager", "fp16", 16, 256, "prefill")
    context = RunContext(
        peers=(
            cell,
            cell.__class__("small", "ort-trt", "eager", "fp16", 1, 128, "prefill"),
            cell.__class__("small", "ort-trt", "eager", "fp16", 256, 256, "prefill"),
            cell.__class__("small", "ort-trt", "eager", "fp32", 512, 256, "prefill"),
        )
    )
    model = SimpleNamespace(cfg=preset("small"))
    (_, opts), *_ = [
        p
        for p in backend.providers(model, cell, SimpleNamespace(sha256="ab" * 32), context)
        if isinstance(p, tuple)
    ]
    assert opts["trt_profile_min_shapes"] == "ids:1x128,lengths:1"
    assert opts["trt_profile_opt_shapes"] == "ids:16x256,lengths:16"
    assert opts["trt_profile_max_shapes"] == "ids:256x256,lengths:256"
