"""Pure ONNX Runtime plumbing: session options, provider lists and TensorRT provider options from a cell.

Nothing here imports onnxruntime at module level or touches a device, so all of it is unit-tested on any
machine; backends/ort_backend.py applies it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from genrec_bench.matrices.cells import Cell
from genrec_bench.models.config import ModelConfig

CPU_EP, CUDA_EP, TRT_EP = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
# The provider a backend asks for first: the session must really run on it (ORT falls back silently).
PROVIDERS = {"ort-cpu": CPU_EP, "ort-cuda": CUDA_EP, "ort-trt": TRT_EP}
THREADS_ENV = "GENREC_ORT_THREADS"


@dataclass(frozen=True)
class SessionSpec:
    """The session options a cell runs with; `as_dict()` goes into the record as it is."""

    graph_optimization_level: str = "ORT_ENABLE_ALL"
    intra_op_num_threads: int = 1
    inter_op_num_threads: int = 1
    execution_mode: str = "ORT_SEQUENTIAL"

    def as_dict(self) -> dict:
        return asdict(self)

    def to_ort(self, ort):
        """An `ort.SessionOptions` with these values (`ort` is the imported onnxruntime module)."""
        opts = ort.SessionOptions()
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.graph_optimization_level)
        opts.execution_mode = getattr(ort.ExecutionMode, self.execution_mode)
        opts.intra_op_num_threads = self.intra_op_num_threads
        opts.inter_op_num_threads = self.inter_op_num_threads
        return opts


def session_spec(torch_threads: int, env: dict | None = None) -> SessionSpec:
    """All graph optimisations, sequential execution, and intra-op threads = torch's thread count (so an
    ort-cpu cell and a torch-cpu cell of one run use the same cores), unless $GENREC_ORT_THREADS says."""
    env = os.environ if env is None else env
    raw = env.get(THREADS_ENV)
    threads = torch_threads
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{THREADS_ENV}={raw!r} is not a positive integer; unset it or give e.g. 4")
        threads = int(raw)
    return SessionSpec(intra_op_num_threads=threads)


def cuda_provider_options(device_id: int = 0) -> dict:
    """CUDA EP options. use_tf32=0: fp32 cells are true fp32, as torch's default matmul precision is, so the
    fp32 comparison with torch-cuda and the oracle's fp32 tolerance mean the same thing."""
    return {
        "device_id": str(device_id),
        "use_tf32": "0",
        "arena_extend_strategy": "kNextPowerOfTwo",
        "do_copy_in_default_stream": "1",
    }


def phase_shapes(cfg: ModelConfig, phase: str, batch: int, seq_len: int) -> dict[str, tuple[int, ...]]:
    """Every input's shape of `phase` at (batch, seq_len), in PHASE_INPUTS order."""
    kv = (cfg.num_layers, batch, cfg.num_heads, seq_len, cfg.head_dim)
    return {
        "prefill": {"ids": (batch, seq_len), "lengths": (batch,)},
        "decode": {"new_ids": (batch,), "lengths": (batch,), "k_cache": kv, "v_cache": kv},
        "rank": {
            "ids": (batch, seq_len),
            "lengths": (batch,),
            "context": (batch, len(cfg.context_vocab)),
            "candidates": (batch, cfg.num_candidates),
        },
    }[phase]


def shape_range(cells: Iterable[Cell], cell: Cell) -> tuple[tuple[int, int], tuple[int, int]]:
    """((min, max) batch, (min, max) seq_len) over the matrix cells that can share `cell`'s engine: same
    model, backend, precision and phase. `cell` itself is always inside the range."""
    peers = [
        c
        for c in cells
        if (c.model, c.backend, c.precision, c.phase)
        == (cell.model, cell.backend, cell.precision, cell.phase)
    ] + [cell]
    batches, seqs = [c.batch for c in peers], [c.seq_len for c in peers]
    return (min(batches), max(batches)), (min(seqs), max(seqs))


def _profile(shapes: dict[str, tuple[int, ...]]) -> str:
    """ORT's profile-shape syntax: `ids:1x32,lengths:1`."""
    return ",".join(f"{name}:{'x'.join(str(d) for d in dims)}" for name, dims in shapes.items())


def trt_profile_shapes(
    cfg: ModelConfig, cell: Cell, batch_range: tuple[int, int], seq_range: tuple[int, int]
) -> dict[str, str]:
    """min/opt/max optimisation-profile shapes: the range's ends, tuned for the cell's own shape."""
    (b_lo, b_hi), (s_lo, s_hi) = batch_range, seq_range
    if not (1 <= b_lo <= cell.batch <= b_hi):
        raise ValueError(f"batch_range={batch_range} does not hold the cell's batch {cell.batch}")
    if not (1 <= s_lo <= cell.seq_len <= s_hi):
        raise ValueError(f"seq_range={seq_range} does not hold the cell's seq_len {cell.seq_len}")
    if s_hi > cfg.max_seq_len:
        raise ValueError(f"seq_range={seq_range} passes {cfg.name}'s max_seq_len={cfg.max_seq_len}")
    return {
        "trt_profile_min_shapes": _profile(phase_shapes(cfg, cell.phase, b_lo, s_lo)),
        "trt_profile_opt_shapes": _profile(phase_shapes(cfg, cell.phase, cell.batch, cell.seq_len)),
        "trt_profile_max_shapes": _profile(phase_shapes(cfg, cell.phase, b_hi, s_hi)),
    }


def trt_engine_dir(cache_root: Path, cell: Cell, onnx_sha256: str, batch_range, seq_range) -> Path:
    """Engine cache folder: one per exported file (its sha256) and profile range, so a rebuilt export or a
    wider matrix never picks up an engine built for something else."""
    (b_lo, b_hi), (s_lo, s_hi) = batch_range, seq_range
    return (
        Path(cache_root)
        / "trt"
        / f"{cell.model}-{cell.phase}-{cell.precision}-{onnx_sha256[:12]}-b{b_lo}-{b_hi}-s{s_lo}-{s_hi}"
    )


def trt_provider_options(
    cfg: ModelConfig,
    cell: Cell,
    *,
    onnx_sha256: str,
    cache_root: Path,
    batch_range: tuple[int, int],
    seq_range: tuple[int, int],
    device_id: int = 0,
    int8: bool = False,
    int8_calibration_table: Path | None = None,
    workspace_bytes: int = 4 << 30,
) -> dict:
    """TensorRT EP options for `cell`: precision flags, engine/timing caches under the cache root, and the
    optimisation profile from the matrix's batch and seq_len range.

    fp16 cells run an fp16 graph, and trt_fp16_enable lets TensorRT pick fp16 kernels for it; fp32 cells keep
    it off (fp32 means fp32). INT8 needs a calibration table (the harness has no calibration data of its own).
    """
    if cell.precision not in ("fp32", "fp16"):
        raise ValueError(f"ort-trt | precision {cell.precision!r} has no ONNX export; use fp32 or fp16")
    if int8 and int8_calibration_table is None:
        raise ValueError(
            "ort-trt | int8=True needs int8_calibration_table=<path to a TensorRT calibration "
            "table>; without one TensorRT has no scales"
        )
    engines = trt_engine_dir(cache_root, cell, onnx_sha256, batch_range, seq_range)
    opts = {
        "device_id": str(device_id),
        "trt_fp16_enable": str(cell.precision == "fp16"),
        "trt_int8_enable": str(bool(int8)),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(engines),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(Path(cache_root) / "trt" / "timing"),
        "trt_max_workspace_size": str(workspace_bytes),
        **trt_profile_shapes(cfg, cell, batch_range, seq_range),
    }
    if int8:
        opts["trt_int8_calibration_table_name"] = str(int8_calibration_table)
        opts["trt_int8_use_native_calibration_table"] = "False"
    return opts


def provider_list(backend: str, *, trt_options: dict | None = None, device_id: int = 0) -> list:
    """The providers a backend asks for, first one first. ort-trt keeps CUDA behind it for the nodes TensorRT
    does not take; CPU is never listed for GPU backends, so a missing GPU provider cannot hide behind it."""
    if backend == "ort-cpu":
        return [CPU_EP]
    if backend == "ort-cuda":
        return [(CUDA_EP, cuda_provider_options(device_id))]
    if backend == "ort-trt":
        if trt_options is None:
            raise ValueError("ort-trt | provider_list needs trt_options (see trt_provider_options)")
        return [(TRT_EP, trt_options), (CUDA_EP, cuda_provider_options(device_id))]
    raise ValueError(f"unknown ORT backend {backend!r}; ORT backends: {', '.join(PROVIDERS)}")
