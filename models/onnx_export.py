"""ONNX export of the recommender's phases, one self-contained cached file per (preset, phase, precision).

Exporter: torch's dynamo-based exporter, `torch.onnx.export(..., dynamo=True)` (torch.export → ONNX through
onnxscript), at opset 20. Why this one rather than the TorchScript tracer:
- dynamic shapes are declared as `torch.export.Dim`s and *checked*: if the model's code specialises a dynamic
  axis (a Python int taken from a shape, a 0/1 special case), export fails with the guard that did it, where
  the tracer would silently bake the example's size into the graph and give wrong answers at another batch
  size;
- it is the exporter torch maintains (the TorchScript one is deprecated) and the one the kernels' torch
  references were written for (ScatterElements/CumSum/Gather, no data-dependent control flow);
- its cost is the export time (≈5 s a phase for `tiny` on two cores, vs <1 s traced), paid once per cache key.
Opset 20 is this exporter's native opset (no version-conversion pass), has LayerNormalization (17+) and is
covered by ONNX Runtime ≥ 1.17 and TensorRT 10's ONNX parser.

Shapes: batch is dynamic in every phase; the history length (`ids`' second axis, the KV cache's S axis) is
dynamic in every phase up to the preset's max_seq_len. The catalogue, k, layer/head counts, context features
and candidate count are static. Inputs are named as in models.PHASE_INPUTS, outputs ("scores", "items").

Precision: fp16 files are exported from a `.half()` copy of the model, so the graph computes in fp16 end to
end with int64 ids/lengths/items, fp16 KV-cache inputs (decode) and fp16 scores — the same policy as the torch
backend's weights cast. bf16 is not exported: numpy (the I/O path of ONNX Runtime's Python API) has no bf16
dtype and ORT's CPU/CUDA kernels cover few bf16 ops, so ORT cells are fp32 and fp16 only.

Only kernel="torch" exports: the Triton kernels are launches of GPU binaries that no ONNX op represents.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from genrec_bench.models.config import ModelConfig, WorkloadConfig
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.onnx_cache import OnnxCache, cache_key
from genrec_bench.models.recommender import PHASE_INPUTS, PHASE_OUTPUTS, GenerativeRecommender, PhaseModule
from genrec_bench.models.workload import draw

OPSET = 20


class ExportError(RuntimeError):
    """An export failed or was asked for something that is not exported; one line naming preset, phase and
    precision (backends report it as their own BackendError)."""


EXPORTER = "torch.export.export(strict=False) + torch.onnx.export(dynamo=True)"
EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
# Example sizes for tracing: > 1 (0 and 1 are specialised by torch.export) and unlike any static dimension
# of the presets (heads, layers, context features), so no axis is mistaken for another.
_EXAMPLE_BATCH, _EXAMPLE_SEQ = 5, 11
# The graph depends on this code as much as on the config: a change here must not load a stale export.
_SOURCES = ("models/*.py", "kernels/interaction/reference.py", "kernels/jagged_pooling/reference.py")


@dataclass(frozen=True)
class OnnxExport:
    """An exported phase on disk: the file, its sha256, the manifest, and how this call got it."""

    path: Path
    sha256: str
    manifest: dict
    built: bool
    status: str
    seconds: float

    def info(self) -> dict:
        """What a record says about the file it ran."""
        return {
            "path": str(self.path),
            "sha256": self.manifest["sha256"],
            "size_bytes": self.manifest["size"],
            "opset": self.manifest["opset"],
            "exporter": self.manifest["exporter"],
            "cache": self.status,
            "prepare_s": round(self.seconds, 3),
        }


def _versions() -> dict:
    import onnx
    import onnxscript

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__}


def _source_hash() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for pattern in _SOURCES:
        for path in sorted(root.glob(pattern)):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def export_fields(cfg: ModelConfig, phase: str, precision: str) -> dict:
    """The cache key's fields: model config fingerprint, phase, precision, opset, exporter and versions."""
    return {
        "model": cfg.name,
        "fingerprint": cfg.fingerprint(),
        "phase": phase,
        "precision": precision,
        "opset": OPSET,
        "exporter": EXPORTER,
        "sources": _source_hash(),
        **_versions(),
    }


def dynamic_shapes(phase: str, cfg: ModelConfig) -> tuple:
    """torch.export Dims per input of `phase`, in PHASE_INPUTS order (wrapped for PhaseModule's *inputs)."""
    batch = torch.export.Dim("batch", min=1)
    seq = torch.export.Dim("seq", min=1, max=cfg.max_seq_len)
    per_phase = {
        "prefill": ({0: batch, 1: seq}, {0: batch}),
        "decode": ({0: batch}, {0: batch}, {1: batch, 3: seq}, {1: batch, 3: seq}),
        "rank": ({0: batch, 1: seq}, {0: batch}, {0: batch}, {0: batch}),
    }
    return (per_phase[phase],)


def export_phase(model: GenerativeRecommender, phase: str, precision: str, dest: Path) -> dict:
    """Export one phase of `model` (fp32 CPU weights) in `precision` to the file `dest`; raises
    ExportError."""
    where = f"onnx-export | {model.cfg.name}/{phase}/{precision}"
    if precision not in EXPORT_DTYPES:
        raise ExportError(
            f"{where}: precision {precision!r} is not exported; exported: "
            f"{', '.join(EXPORT_DTYPES)} (no numpy bf16 for ONNX Runtime I/O)"
        )
    if phase not in PHASE_INPUTS:
        raise ExportError(f"{where}: unknown phase; phases: {', '.join(PHASE_INPUTS)}")
    dtype = EXPORT_DTYPES[precision]
    # kernel="torch": the export must see the reference ops. Every precision exports from its own copy (the
    # caller's model is shared, and may hold inference tensors), so fp32 and fp16 take one and the same path.
    net = copy.deepcopy(model.variant(kernel="torch")).to(dtype)
    example_cfg = dataclasses.replace(model.cfg, workload=WorkloadConfig())  # shapes only: a plain workload
    drawn = draw(example_cfg, phase, _EXAMPLE_BATCH, min(_EXAMPLE_SEQ, model.cfg.max_seq_len), seed=0)
    example = phase_inputs(net, phase, drawn, "cpu", dtype)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            # One stated path: torch.export in non-strict mode, then the ONNX translation of that program.
            # (torch.onnx.export given the module would try non-strict and silently retry strict on failure.)
            exported = torch.export.export(
                PhaseModule(net, phase).eval(),
                example,
                dynamic_shapes=dynamic_shapes(phase, model.cfg),
                strict=False,
            )
            program = torch.onnx.export(
                exported,
                dynamo=True,
                opset_version=OPSET,
                input_names=list(PHASE_INPUTS[phase]),
                output_names=list(PHASE_OUTPUTS),
                optimize=True,
                verbose=False,
            )
            # Weights inside the file: the presets stay under protobuf's 2 GB (base: 1M×256 fp32 ≈ 1 GB).
            program.save(str(dest), external_data=False)
    except Exception as exc:
        raise ExportError(f"{where}: torch.export (non-strict) → ONNX failed: {root_cause(exc)}") from exc
    return {"capture": "torch.export.export(strict=False), then torch.onnx.export(ExportedProgram)"}


def exported_model(
    model: GenerativeRecommender, phase: str, precision: str, cache: OnnxCache | None = None
) -> OnnxExport:
    """The cached export of (model's preset, phase, precision), exported now if missing or corrupt."""
    cache = cache or OnnxCache()
    fields = export_fields(model.cfg, phase, precision)
    start = time.perf_counter()
    stem = f"{model.cfg.name}-{phase}-{precision}"

    def build(dest: Path) -> dict:
        from rich.console import Console

        # A `base` export takes 10-24 s with no other output: say what is happening, on the terminal itself.
        with Console(file=sys.__stderr__).status(f"genrec-bench: exporting {stem} to ONNX…"):
            return export_phase(model, phase, precision, dest)

    try:
        entry, status = cache.get_or_build(stem, cache_key(fields), fields, build)
    except ExportError:
        raise
    except Exception as exc:  # checker or filesystem failure of a fresh export: still one line
        raise ExportError(f"onnx-export | {stem}: {root_cause(exc)}") from exc
    return OnnxExport(
        path=entry.path,
        sha256=entry.manifest["sha256"],
        manifest=entry.manifest,
        built=entry.built,
        status=status,
        seconds=time.perf_counter() - start,
    )


def root_cause(exc: BaseException) -> str:
    """`Type: first line` of the innermost cause: the exporter wraps the real reason in pages of advice."""
    while exc.__cause__ is not None and exc.__cause__ is not exc:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = "".join(ch for ch in text if ch.isprintable())
    for code in ("[96m", "[0m", "[1m"):
        text = text.replace(code, "")
    return f"{type(exc).__name__}: {text}"[:400]
