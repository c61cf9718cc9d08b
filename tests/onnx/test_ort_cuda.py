"""ort-cuda on the GPU machine: the session really runs on CUDA, I/O is bound on the device, and fp32/fp16
cells of every phase pass the oracle. Skipped with the reason where onnxruntime-gpu or a GPU is missing."""

from __future__ import annotations

import pytest

from genrec_bench.backends import get_backend
from genrec_bench.bench.oracle import compare
from genrec_bench.bench.reference_model import reference
from genrec_bench.bench.tolerances import limits_for
from genrec_bench.matrices.cells import Cell
from genrec_bench.models import draw

pytestmark = pytest.mark.gpu
CUDA_OK, CUDA_WHY = get_backend("ort-cuda").availability()


@pytest.mark.skipif(not CUDA_OK, reason=f"ort-cuda unavailable: {CUDA_WHY}")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("phase", ["prefill", "decode", "rank"])
def test_ort_cuda_binds_on_device_and_passes_the_oracle(tiny, phase, precision):
    cell = Cell(
        model="tiny", backend="ort-cuda", mode="eager", precision=precision, batch=8, seq_len=32, phase=phase
    )
    drawn = draw(tiny.cfg, phase, cell.batch, cell.seq_len, seed=7)
    with get_backend("ort-cuda").prepare(tiny, cell) as session:
        assert session.timer == "sync_clock" and session.device == "cuda:0"
        result = session.runner(drawn)()
        session.synchronize()
        assert all(value.device_name().lower() == "cuda" for value in result)  # outputs stayed on the GPU
        scores, items = session.fetch(result)
        info = session.info()
    assert info["providers"][0] == "CUDAExecutionProvider"
    assert info["provider_options"]["CUDAExecutionProvider"]["use_tf32"] == "0"
    verdict = compare(reference("tiny", phase, drawn), scores, items, limits_for(precision, phase))
    assert verdict.passed, verdict.message


@pytest.mark.skipif(not CUDA_OK, reason=f"ort-cuda unavailable: {CUDA_WHY}")
@pytest.mark.parametrize("phase", ["prefill", "decode", "rank"])
def test_graph_copies_nothing_to_the_host(tiny, phase, capfd):
    """ORT keeps the graph's shape arithmetic on the CPU EP and uploads its few scalars (MemcpyFromHost); a
    MemcpyToHost would be a device→host sync inside the timed run. ORT's session log names every copy it
    adds."""
    import onnxruntime as ort

    from genrec_bench.backends.ort_options import provider_list
    from genrec_bench.models.onnx_export import exported_model

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    opts = ort.SessionOptions()
    opts.log_severity_level = 1  # INFO: the memcpy transformer's report
    session = ort.InferenceSession(
        str(exported_model(tiny, phase, "fp32").path), opts, providers=provider_list("ort-cuda")
    )
    log = capfd.readouterr().err
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    assert "MemcpyTransformer" in log, "ORT's INFO log was not captured; the check below would prove nothing"
    assert "MemcpyToHost" not in log
