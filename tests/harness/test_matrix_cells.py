"""Matrix expansion: products, modes per backend, include/exclude with reasons, ids, the shipped matrices."""

import dataclasses
from pathlib import Path

import pytest

from genrec_bench.backends import backend_modes
from genrec_bench.kernels import KERNELS
from genrec_bench.matrices import Cell, Known, load_matrix
from genrec_bench.models import presets

ROOT = Path(__file__).resolve().parents[2]
KNOWN = Known(
    backends={"torch-cpu": ("eager", "compile"), "torch-cuda": ("eager", "compile", "cudagraph")},
    models=("tiny", "small"),
    kernels=("torch", "triton"),
)


def load(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_matrix(str(path), KNOWN)


def test_cell_id_reads_like_the_cell():
    cell = Cell("tiny", "torch-cpu", "eager", "fp32", 8, 32, "prefill")
    assert cell.id == "tiny-torch-cpu-fp32-b8-s32-prefill"
    odd = Cell("small", "torch-cuda", "cudagraph", "bf16", 256, 256, "decode", kernel="triton")
    assert odd.id == "small-torch-cuda-cudagraph-bf16-b256-s256-decode-ktriton"


def test_modes_apply_only_to_backends_that_have_them(tmp_path):
    matrix = load(
        tmp_path,
        """
axes: {model: [tiny], backend: [torch-cpu, torch-cuda], mode: [eager, cudagraph], precision: [fp32],
       batch: [1], seq_len: [8], phase: [prefill]}
""",
    )
    ids = [cell.id for cell, _ in matrix.cells(KNOWN)]
    assert ids == [
        "tiny-torch-cpu-fp32-b1-s8-prefill",
        "tiny-torch-cuda-fp32-b1-s8-prefill",
        "tiny-torch-cuda-cudagraph-fp32-b1-s8-prefill",
    ]


def test_exclude_carries_its_reason_and_include_adds_cells(tmp_path):
    matrix = load(
        tmp_path,
        """
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32, bf16], batch: [1, 8], seq_len: [8],
       phase: [prefill]}
exclude:
  - {precision: bf16, batch: [1, 8], reason: "bf16 waits for the new kernels"}
include:
  - {precision: fp16, batch: 8, reason: "one fp16 cell"}
  - {precision: bf16, batch: 8, reason: "asked for by name wins over the exclusion"}
""",
    )
    cells = {cell.id: reason for cell, reason in matrix.cells(KNOWN)}
    assert cells == {
        "tiny-torch-cpu-fp32-b1-s8-prefill": None,
        "tiny-torch-cpu-bf16-b1-s8-prefill": "bf16 waits for the new kernels",
        "tiny-torch-cpu-fp32-b8-s8-prefill": None,
        "tiny-torch-cpu-bf16-b8-s8-prefill": None,
        "tiny-torch-cpu-fp16-b8-s8-prefill": None,
    }


def test_cells_sharing_a_shape_are_adjacent(tmp_path):
    matrix = load(
        tmp_path,
        """
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32, bf16], batch: [1, 8], seq_len: [8],
       phase: [prefill, decode]}
""",
    )
    shapes = [(c.phase, c.batch) for c, _ in matrix.cells(KNOWN)]
    assert shapes == [("prefill", 1)] * 2 + [("prefill", 8)] * 2 + [("decode", 1)] * 2 + [("decode", 8)] * 2


def test_defaults_and_overrides(tmp_path):
    matrix = load(
        tmp_path,
        """
name: t
axes: {model: [tiny], backend: [torch-cpu], precision: [fp32], batch: [1], seq_len: [8], phase: [rank]}
timing: {rounds: 7, warmup_rounds: 0}
tolerance: {fp16: {max_rel_err: 0.05}}
""",
    )
    assert matrix.name == "t"
    assert (matrix.timing.rounds, matrix.timing.warmup_rounds, matrix.timing.min_rounds) == (7, 0, 5)
    assert matrix.tolerance == {"fp16": {"max_rel_err": 0.05}}
    with pytest.raises(dataclasses.FrozenInstanceError):
        matrix.timing.rounds = 3


@pytest.mark.parametrize("name", ["smoke.yaml", "nightly.yaml"])
def test_shipped_matrices_load(name):
    known = Known(backends=backend_modes(), models=tuple(presets()), kernels=tuple(KERNELS))
    matrix = load_matrix(str(ROOT / "matrices" / name), known)
    runnable = [cell for cell, reason in matrix.cells(known) if reason is None]
    assert runnable, f"{name} has no runnable cell"
    for cell in runnable:
        assert cell.seq_len <= presets()[cell.model].max_seq_len, cell.id


def test_kernel_availability_explains_a_cpu_without_the_interpreter(monkeypatch):
    from genrec_bench.kernels import kernel_availability

    assert kernel_availability("torch", "cpu") == (True, "")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    ok, why = kernel_availability("triton", "cpu")
    assert not ok and "TRITON_INTERPRET=1" in why
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernel_availability("triton", "cpu") == (True, "")
    assert kernel_availability("cuda", "cpu")[0] is False


@pytest.mark.parametrize(
    "name, phases, served",
    [
        ("smoke.yaml", {"prefill", "decode", "rank"}, True),
        ("nightly.yaml", {"prefill", "decode", "rank"}, False),
    ],
)
def test_shipped_matrices_send_empty_and_overlong_histories(name, phases, served):
    """The inputs a plain workload never draws (no history; a raw history longer than the window) are cells of
    the matrices CI and the nightly run, in every phase, and (smoke) through the served preprocess as well."""
    known = Known(backends=backend_modes(), models=tuple(presets()), kernels=tuple(KERNELS))
    matrix = load_matrix(str(ROOT / "matrices" / name), known)
    edge = [
        cell
        for cell, reason in matrix.cells(known)
        if reason is None
        and presets()[cell.model].workload.empty_share > 0
        and presets()[cell.model].workload.overlong_share > 0
    ]
    assert {cell.phase for cell in edge} == phases, [c.id for c in edge]
    assert all(
        cell.seq_len == presets()[cell.model].max_seq_len for cell in edge
    )  # overlong needs the window
    assert any(cell.backend.startswith("triton-") for cell in edge) == served
