"""The ORT backends on CPU: a real session through the contract, and every failure as a one-line BackendError
(export failure, missing provider, fallback to CPU, unreadable file) while the rest of the matrix goes on."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
import torch

from genrec_bench.backends import get_backend
from genrec_bench.backends.ort_backend import OrtSession
from genrec_bench.backends.ort_options import CUDA_EP, SessionSpec
from genrec_bench.bench.oracle import compare
from genrec_bench.bench.reference_model import reference
from genrec_bench.bench.tolerances import limits_for
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendError, BackendUnavailable
from genrec_bench.models import draw, preset
from genrec_bench.models.onnx_export import ExportError

ROOT = Path(__file__).resolve().parents[2]


def tiny_cell(backend="ort-cpu", precision="fp32", phase="prefill", kernel="torch", batch=4, seq_len=16):
    return Cell(
        model="tiny",
        backend=backend,
        mode="eager",
        precision=precision,
        batch=batch,
        seq_len=seq_len,
        phase=phase,
        kernel=kernel,
    )


def test_cpu_session_runs_the_contract(tiny, tiny_prefill):
    cell = tiny_cell()
    drawn = draw(tiny.cfg, "prefill", cell.batch, cell.seq_len, seed=5)
    with get_backend("ort-cpu").prepare(tiny, cell) as session:
        assert session.timer == "host_clock" and session.device == "cpu"
        run = session.runner(drawn)
        first = run()
        scores, items = session.fetch(first)
        again = session.fetch(
            run()
        )  # the bound outputs are reused: the second run overwrites the same buffers
        info = session.info()
    assert compare(reference("tiny", "prefill", drawn), scores, items, limits_for("fp32", "prefill")).passed
    assert torch.equal(again[1], items) and scores.dtype == torch.float32 and items.dtype == torch.int64
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["session_options"]["intra_op_num_threads"] == torch.get_num_threads()
    assert info["session_options"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert info["onnx"]["sha256"] == tiny_prefill.sha256 and info["onnx"]["cache"].startswith("cached")
    json.dumps(info)  # it goes into the JSON record as it is


def test_bf16_and_triton_cells_are_refused_with_reasons(tiny):
    backend = get_backend("ort-cpu")
    assert backend.precisions == ("fp32", "fp16")
    with pytest.raises(BackendError, match="precision 'bf16' is not supported; precisions: fp32, fp16"):
        backend.prepare(tiny, tiny_cell(precision="bf16"))
    with pytest.raises(BackendError, match="ort-cpu | kernel 'triton' cannot run in ONNX Runtime"):
        backend.prepare(tiny.variant(kernel="triton"), tiny_cell(kernel="triton"))


def test_export_failure_is_the_cells_one_line_error(tiny, monkeypatch):
    def failing(model, phase, precision, dest):
        raise ExportError("onnx-export | tiny/prefill/fp32: torch.onnx.export failed: DispatchError: no op")

    # A fresh key, so the cached export is not found and the (failing) exporter is called.
    monkeypatch.setattr("genrec_bench.models.onnx_export._source_hash", lambda: "never-exported")
    monkeypatch.setattr("genrec_bench.models.onnx_export.export_phase", failing)
    with pytest.raises(BackendError) as err:
        get_backend("ort-cpu").prepare(tiny, tiny_cell())
    assert str(err.value) == (
        "ort-cpu | tiny-ort-cpu-fp32-b4-s16-prefill: onnx-export | tiny/prefill/fp32: "
        "torch.onnx.export failed: DispatchError: no op"
    )


def test_unreadable_onnx_file_is_a_clear_error(tiny, tiny_prefill, tmp_path, monkeypatch):
    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"this is not protobuf" * 10)
    monkeypatch.setattr(
        "genrec_bench.models.onnx_export.exported_model",
        lambda *a, **k: dataclasses.replace(tiny_prefill, path=garbage),
    )
    with pytest.raises(BackendError) as err:
        get_backend("ort-cpu").prepare(tiny, tiny_cell())
    message = str(err.value)
    assert message.startswith(f"ort-cpu | cannot load ONNX file {garbage}: ")
    assert "INVALID_PROTOBUF" in message and "\n" not in message


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_silent_fallback_to_cpu_is_caught(tiny, tiny_prefill):
    """ONNX Runtime given CUDA on a CPU build runs on CPU without an error; the session refuses that."""
    with pytest.raises(
        BackendError,
        match=r"asked ONNX Runtime for CUDAExecutionProvider but the session "
        r"runs on \['CPUExecutionProvider'\]",
    ):
        OrtSession(
            "ort-cuda",
            tiny,
            tiny_cell("ort-cuda"),
            tiny_prefill,
            [CUDA_EP],
            SessionSpec(intra_op_num_threads=1),
            "cuda:0",
        )


@pytest.mark.parametrize(
    "name, provider", [("ort-cuda", "CUDAExecutionProvider"), ("ort-trt", "TensorrtExecutionProvider")]
)
def test_missing_provider_makes_the_backend_unavailable(tiny, monkeypatch, name, provider):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    backend = get_backend(name)
    ok, reason = backend.availability()
    assert not ok and f"{provider} is not among onnxruntime {ort.__version__}'s providers" in reason
    with pytest.raises(BackendUnavailable, match=provider):
        backend.prepare(tiny, tiny_cell(name))


def test_trt_without_tensorrt_libraries_says_so(monkeypatch):
    monkeypatch.setattr(
        ort,
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    monkeypatch.setattr("genrec_bench.backends.ort_backend._gpu_visible", lambda: (True, ""))
    monkeypatch.setattr("ctypes.CDLL", lambda name: (_ for _ in ()).throw(OSError(f"{name}: cannot open")))
    ok, reason = get_backend("ort-trt").availability()
    assert not ok and "TensorRT libraries are not loadable" in reason and "libnvinfer.so.10" in reason


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    for name in ("ort-cpu", "ort-cuda", "ort-trt"):
        ok, reason = get_backend(name).availability()
        assert not ok and "pip install 'genrec-bench[onnx]'" in reason


def test_failing_cell_leaves_the_rest_of_the_matrix_running(tmp_path, tiny_prefill, bench_subprocess):
    """Through pytest and the plugin: a kernel=triton ORT cell fails on one line, its neighbour passes."""
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "name: ort-errors\naxes: {model: [tiny], backend: [ort-cpu], precision: [fp32], "
        "batch: [2], seq_len: [16], phase: [prefill], kernel: [triton, torch]}\n"
        "timing: {warmup_rounds: 0, rounds: 2, min_rounds: 1, max_time_s: 0.1}\n"
    )
    out = tmp_path / "out.json"
    proc = bench_subprocess(matrix, out)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 failed, 1 passed" in proc.stdout
    assert "FAILED bench/test_cells.py::test_cell[tiny-ort-cpu-fp32-b2-s16-prefill-ktriton]" in proc.stdout
    # pytest.fail(pytrace=False): the failure section is the message alone, one line, no traceback.
    assert (
        "\nort-cpu | kernel 'triton' cannot run in ONNX Runtime" in proc.stdout
        and "Traceback" not in proc.stdout
    )
    records = [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]
    assert [r["cell"]["id"] for r in records] == ["tiny-ort-cpu-fp32-b2-s16-prefill"]
    assert records[0]["numerics"]["passed"] and records[0]["backend"]["providers"] == ["CPUExecutionProvider"]


def test_an_fp16_cell_that_loads_the_fp32_graph_is_a_false_label(tiny, monkeypatch):
    """A cache key that drops the precision hands an fp16 cell the fp32 file: the numbers pass, the graph's
    own declared types and the raw output say fp32, and the label check fails the cell."""
    from genrec_bench.bench.provenance import contradictions, provenance
    from genrec_bench.models import onnx_export

    right = onnx_export.exported_model
    monkeypatch.setattr(
        onnx_export,
        "exported_model",
        lambda model, phase, precision, cache=None: right(model, phase, "fp32", cache),
    )
    cell = tiny_cell(precision="fp16")
    drawn = draw(preset("tiny"), "prefill", cell.batch, cell.seq_len, seed=0)
    with get_backend("ort-cpu").prepare(tiny, cell) as session:
        first = session.runner(drawn)()
        ran = provenance(first, {}, session.provenance())
    assert ran["graph_io"]["scores"] == "tensor(float)" and ran["output_dtype"] == "float32"
    assert contradictions(cell, ran) == [
        "the scores were computed in float32, not the cell's fp16 (float16)",
        "the ONNX graph declares scores as tensor(float), not the cell's fp16",
    ]
    monkeypatch.setattr(onnx_export, "exported_model", right)  # the right file says what the label says
    with get_backend("ort-cpu").prepare(tiny, cell) as session:
        ran = provenance(session.runner(drawn)(), {}, session.provenance())
    assert contradictions(cell, ran) == [] and ran["graph_io"]["scores"] == "tensor(float16)"
