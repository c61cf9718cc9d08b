"""ONNX Runtime backends: `ort-cpu`, `ort-cuda`, `ort-trt` (TensorRT execution provider).

Each cell runs the cached ONNX export of its (preset, phase, precision) — see models/onnx_export.py for the
exporter, opset and how fp16 graphs are made. Precisions are fp32 and fp16 only: bf16 has no numpy dtype for
ONNX Runtime's I/O and few ORT kernels, so a bf16 ORT cell is refused by Backend.prepare.

- Providers: availability comes from `onnxruntime.get_available_providers()` (plus a visible GPU, and for
  TensorRT its libraries); after the session is made, its `get_providers()` must start with the provider asked
  for — ONNX Runtime otherwise falls back to CPU without an error — and the list goes into the record.
- I/O binding everywhere: inputs are OrtValues on the session's device and outputs are pre-allocated there, so
  the timed closure is `run_with_iobinding` and nothing else; on CUDA nothing crosses to the host inside it.
  `fetch()` copies the outputs out afterwards.
- Decode's KV cache is built by the fp32 CPU torch model (models.phase_inputs) and cast to the cell's dtype.
- Timers: ort-cpu `host_clock` (run returns when done); GPU backends `sync_clock` (run, then synchronise the
  bound outputs).

onnxruntime is imported lazily, inside availability() and prepare_impl(), so the harness imports without it.
"""

from __future__ import annotations

import ctypes
from typing import ClassVar

import numpy as np
import torch

from genrec_bench.backends.base import Backend, RunContext, Session
from genrec_bench.backends.ort_options import (
    CPU_EP,
    PROVIDERS,
    TRT_EP,
    provider_list,
    session_spec,
    shape_range,
    trt_provider_options,
)
from genrec_bench.backends.registry import register_backend
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendError
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.recommender import PHASE_INPUTS, PHASE_OUTPUTS

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
INSTALL_HINT = "install the `onnx` extra (pip install 'genrec-bench[onnx]')"
_dlls_preloaded = False


def _import_ort():
    """(module, "") or (None, why not)."""
    try:
        import onnxruntime
    except ImportError as exc:
        return None, f"onnxruntime is not importable ({exc}); {INSTALL_HINT}"
    return onnxruntime, ""


def _gpu_visible() -> tuple[bool, str]:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception as exc:  # noqa: BLE001 — no driver / no NVML: a fact about this machine, not an error
        return False, f"no NVIDIA GPU visible (NVML: {type(exc).__name__}: {exc})"
    return (count > 0, "" if count else "NVML sees no GPU")


def _preload_cuda_libraries(ort) -> None:
    """onnxruntime-gpu ≥ 1.21 can load CUDA/cuDNN from the nvidia-* wheels torch ships; without it the CUDA EP
    may not find them and the session would fall back to CPU (which the provider check then reports)."""
    global _dlls_preloaded
    if not _dlls_preloaded and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
        _dlls_preloaded = True


class OrtSession(Session):
    """One ONNX Runtime session for one cell, with its I/O bound on `device`."""

    def __init__(self, backend: str, model, cell: Cell, export, providers: list, spec, device: str):
        import onnxruntime as ort

        self.ort, self.name, self.cell, self.model, self.export = ort, backend, cell, model, export
        self.spec, self.device = spec, device
        self.timer = "host_clock" if device == "cpu" else "sync_clock"
        self._ort_device = ("cpu", 0) if device == "cpu" else ("cuda", int(device.split(":")[1]))
        self.binding = self._bound = None
        try:
            self.sess = ort.InferenceSession(
                str(export.path), sess_options=spec.to_ort(ort), providers=providers
            )
        except Exception as exc:
            from genrec_bench.models.onnx_export import root_cause

            raise BackendError(f"{backend} | cannot load ONNX file {export.path}: {root_cause(exc)}") from exc
        wanted, got = PROVIDERS[backend], self.sess.get_providers()
        if not got or got[0] != wanted:
            raise BackendError(
                f"{backend} | asked ONNX Runtime for {wanted} but the session runs on {got}: it "
                f"fell back (are the CUDA/cuDNN/TensorRT libraries loadable?)"
            )
        names = ([i.name for i in self.sess.get_inputs()], [o.name for o in self.sess.get_outputs()])
        if names != (list(PHASE_INPUTS[cell.phase]), list(PHASE_OUTPUTS)):
            raise BackendError(
                f"{backend} | {export.path} has inputs/outputs {names}, but phase {cell.phase} "
                f"wants {list(PHASE_INPUTS[cell.phase])} → {list(PHASE_OUTPUTS)}"
            )

    def runner(self, drawn):
        ort, (kind, index) = self.ort, self._ort_device
        inputs = phase_inputs(self.model, self.cell.phase, drawn, "cpu", DTYPES[self.cell.precision])
        binding = self.sess.io_binding()
        keep = []  # OrtValues (and on CPU the numpy arrays they alias) must outlive the binding
        for name, tensor in zip(PHASE_INPUTS[self.cell.phase], inputs):
            array = np.ascontiguousarray(tensor.numpy())
            value = ort.OrtValue.ortvalue_from_numpy(array, kind, index)
            binding.bind_ortvalue_input(name, value)
            keep += [array, value]
        batch = inputs[0].shape[0]
        outputs = []
        for meta in self.sess.get_outputs():
            k = meta.shape[1]
            if not isinstance(k, int) or meta.type not in ORT_TYPES:
                raise BackendError(
                    f"{self.name} | output {meta.name} is {meta.type}{meta.shape}; want a static "
                    f"k and one of {list(ORT_TYPES)}"
                )
            value = ort.OrtValue.ortvalue_from_shape_and_type([batch, k], ORT_TYPES[meta.type], kind, index)
            binding.bind_ortvalue_output(meta.name, value)
            outputs.append(value)
        binding.synchronize_inputs()
        self.binding, self._bound = binding, (keep, outputs)
        sess, run_options, result = self.sess, ort.RunOptions(), tuple(outputs)

        def run():
            sess.run_with_iobinding(binding, run_options)
            return result

        return run

    def fetch(self, result):
        scores, items = (torch.from_numpy(value.numpy()) for value in result)
        return scores.float(), items.long()

    def provenance(self):
        # The file's own declared types: an fp16 cell that loaded the fp32 graph says so here.
        return {
            "graph_io": {
                meta.name: meta.type
                for meta in (*self.sess.get_inputs(), *self.sess.get_outputs())
                if meta.type.startswith("tensor(float") or meta.type == "tensor(bfloat16)"
            }
        }

    def synchronize(self):
        if self.binding is not None and self.device != "cpu":
            self.binding.synchronize_outputs()

    def info(self):
        got = self.sess.get_providers()
        options = self.sess.get_provider_options()
        where = f"{self._ort_device[0]}:{self._ort_device[1]}"
        return {
            "onnxruntime": self.ort.__version__,
            "providers": got,
            "provider_options": {p: options.get(p, {}) for p in got if p != CPU_EP},
            "session_options": self.spec.as_dict(),
            "onnx": self.export.info(),
            "io_binding": f"inputs as OrtValues on {where}, outputs pre-allocated on {where}; "
            f"fetch() copies them out after timing",
            "precision_policy": (
                "graph exported from the fp32 model"
                if self.cell.precision == "fp32"
                else "graph exported from a .half() copy of the model: fp16 weights, activations, "
                "KV cache and scores; int64 ids/lengths/items"
            ),
            "kv_cache": (
                "built by the fp32 CPU torch model, cast to the cell's dtype"
                if self.cell.phase == "decode"
                else None
            ),
        }

    def close(self):
        self.binding = self._bound = None
        self.sess = None


class _OrtBackend(Backend):
    """Shared prepare/availability of the three ORT backends; subclasses name their provider and device."""

    precisions: ClassVar[tuple[str, ...]] = tuple(DTYPES)
    install_hint: ClassVar[str] = INSTALL_HINT

    def availability(self, context=None):
        ort, why = _import_ort()
        if ort is None:
            return False, why
        provider, offered = PROVIDERS[self.name], ort.get_available_providers()
        if provider not in offered:
            return False, (
                f"{provider} is not among onnxruntime {ort.__version__}'s providers "
                f"({', '.join(offered)}); {self.install_hint}"
            )
        return self.device_check()

    def device_check(self) -> tuple[bool, str]:
        return True, ""

    def prepare_impl(self, model, cell, context):
        from genrec_bench.models.onnx_export import ExportError, exported_model

        if cell.kernel != "torch":
            raise BackendError(
                f"{self.name} | kernel {cell.kernel!r} cannot run in ONNX Runtime: the Triton "
                f"kernels are GPU launches no ONNX op represents; ORT cells use kernel=torch"
            )
        ort, _ = _import_ort()
        if self.device != "cpu":
            _preload_cuda_libraries(ort)
        try:
            export = exported_model(model, cell.phase, cell.precision)
        except ExportError as err:
            raise BackendError(f"{self.name} | {cell.id}: {err}") from None
        spec = session_spec(torch.get_num_threads())
        return OrtSession(
            self.name, model, cell, export, self.providers(model, cell, export, context), spec, self.device
        )

    def providers(self, model, cell: Cell, export, context: RunContext) -> list:
        return provider_list(self.name)


@register_backend
class OrtCPU(_OrtBackend):
    name = "ort-cpu"


@register_backend
class OrtCUDA(_OrtBackend):
    name = "ort-cuda"
    device = "cuda:0"
    install_hint = "install onnxruntime-gpu (the `gpu` extra) in place of onnxruntime"

    def device_check(self):
        return _gpu_visible()


@register_backend
class OrtTensorRT(_OrtBackend):
    name = "ort-trt"
    device = "cuda:0"
    install_hint = "needs onnxruntime-gpu (the `gpu` extra), whose builds carry the TensorRT provider"

    def device_check(self):
        ok, why = _gpu_visible()
        if not ok:
            return ok, why
        return _tensorrt_libraries()

    def providers(self, model, cell, export, context):
        from genrec_bench.models.onnx_cache import cache_root

        # One engine per profile serves every peer cell of the same model/precision/phase: the profile spans
        # the batch and seq_len range the matrix asks of it (the run context holds the runnable peers).
        batch_range, seq_range = shape_range(context.peers, cell)
        opts = trt_provider_options(
            model.cfg,
            cell,
            onnx_sha256=export.sha256,
            cache_root=cache_root().parent,
            batch_range=batch_range,
            seq_range=seq_range,
        )
        return provider_list(self.name, trt_options=opts)


def _tensorrt_libraries() -> tuple[bool, str]:
    """TensorRT's runtime must be loadable for the TensorRT EP to build engines (ORT ships only the EP)."""
    errors = []
    for lib in ("libnvinfer.so.10", "libnvinfer.so.8"):
        try:
            ctypes.CDLL(lib)
            return True, ""
        except OSError as exc:
            errors.append(str(exc).split(":")[-1].strip())
    return False, (
        f"{TRT_EP} is offered but the TensorRT libraries are not loadable "
        f"(libnvinfer.so.10/.so.8: {errors[0] if errors else 'not found'}); install TensorRT 10"
    )
