"""What makes two runs comparable, and what makes two measurements the same series.

- The **hardware** fingerprint: GPU name, count, memory (GiB), compute capability, CPU model — stable fields
  only. Older files record only some of them (the committed H100 baselines name the GPU and CPU): a field a
  file does not record is unknown, and two fingerprints are comparable when they agree on every field both
  know. The history's folder for a machine is named after the GPU (the CPU on a machine without one), the
  field every results file records; the full fingerprint is in each entry and checked run by run.
- The **software** fingerprint: driver, CUDA, torch, onnxruntime, triton, tritonserver. A change is a marker
  on the series, not a new series.
- A **series** is a cell id plus a hash of what defines its work (cell axes and workload, timing method and
  warm-up, matrix, the backend's options, the serving scenario), so a changed cell starts a new series instead
  of looking like a regression. Outcomes (rounds fitted into the time budget, ports, paths, versions) stay
  out.
"""

from __future__ import annotations

import hashlib
import json
import re

HARDWARE_FIELDS = ("gpu_name", "gpu_count", "gpu_memory_gib", "compute_capability", "cpu_model")
SOFTWARE_FIELDS = ("driver", "cuda", "torch", "onnxruntime", "triton", "tritonserver")
CELL_AXES = ("model", "backend", "mode", "precision", "batch", "seq_len", "phase", "kernel", "matrix")
# The backend options that define a cell's work; everything else a backend reports is description or outcome.
# Not ORT's provider_options: the session reports every default of the installed release (and, for TensorRT,
# cache paths), so they would split a series at each upgrade; the harness's own choices are session_options.
BACKEND_OPTIONS = (
    "mode",
    "device",
    "compile",
    "providers",
    "session_options",
    "protocol",
    "target",
    "genrec_device",
    "deployment",
)
SERVING_OPTIONS = ("scenario", "protocol", "target", "users_per_request")
SWEEP_OPTIONS = ("kind", "warmup_s", "measure_s", "clients")


def short_hash(value) -> str:
    """The first 10 hex digits of the SHA-256 of `value` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _gib(mib) -> int | None:
    return None if mib is None else round(mib / 1024)


def hardware_of_cells(machine_info: dict) -> dict:
    """The hardware fingerprint of a pytest-benchmark file, from machine_info's `genrec` section."""
    env = machine_info.get("genrec") or {}
    gpu = env.get("gpu_name") or (
        env.get("device_name") if str(env.get("device", "")).startswith("cuda") else None
    )
    return {
        "gpu_name": gpu,
        "gpu_count": env.get("gpu_count"),
        "gpu_memory_gib": _gib(env.get("gpu_memory_mib")),
        "compute_capability": env.get("compute_capability"),
        "cpu_model": env.get("cpu") or (machine_info.get("cpu") or {}).get("brand_raw"),
    }


def hardware_of_kernels(machine: dict) -> dict:
    """The hardware fingerprint of a kernel micro-benchmark file, from its `machine` section."""
    return {
        "gpu_name": machine.get("gpu_name") or machine.get("device"),
        "gpu_count": machine.get("gpu_count"),
        "gpu_memory_gib": _gib(machine.get("gpu_memory_mib")),
        "compute_capability": machine.get("compute_capability"),
        "cpu_model": machine.get("cpu"),
    }


def _tritonserver(libraries: dict) -> str | None:
    # The embedded server is the tritonserver binary inside nvidia-pytriton's wheel: its version names it.
    version = libraries.get("nvidia-pytriton")
    return f"nvidia-pytriton {version}" if version else None


def software_of_cells(machine_info: dict, records: list[dict]) -> dict:
    """The software fingerprint of a pytest-benchmark run. onnxruntime is the version the cells loaded (the
    CPU and GPU wheels share one import name, and a run without ORT cells did not use it); unknown fields are
    None."""
    env = machine_info.get("genrec") or {}
    libraries = env.get("libraries") or {}
    loaded: dict = {}
    for record in records:
        loaded.update((record.get("env") or {}).get("loaded") or {})
    return {
        "driver": env.get("driver"),
        "cuda": env.get("cuda"),
        "torch": libraries.get("torch"),
        "onnxruntime": loaded.get("onnxruntime"),
        "triton": loaded.get("triton") or libraries.get("triton"),
        "tritonserver": _tritonserver(libraries),
    }


def software_of_kernels(machine: dict) -> dict:
    driver = machine.get("driver")
    return {
        "driver": None if str(driver).startswith("unknown") else driver,
        "cuda": machine.get("cuda"),
        "torch": machine.get("torch"),
        "onnxruntime": None,
        "triton": machine.get("triton"),
        "tritonserver": None,
    }


def machine_folder(hardware: dict) -> str:
    """The history folder of a machine: its GPU model as a slug (`nvidia-h100-80gb-hbm3`), `cpu-<model>`
    without."""
    name = hardware.get("gpu_name") or f"cpu-{hardware.get('cpu_model') or 'unknown'}"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def hardware_differences(a: dict, b: dict) -> list[str]:
    """The fields both fingerprints know and disagree on, as `field a ≠ b`; empty when comparable."""
    return [
        f"{f} {a.get(f)} ≠ {b.get(f)}"
        for f in HARDWARE_FIELDS
        if a.get(f) is not None and b.get(f) is not None and a.get(f) != b.get(f)
    ]


def software_changes(before: dict, after: dict) -> list[str]:
    """What changed between two software fingerprints, as `torch 2.11.0 → 2.12.0`; a field one of them does
    not know (a run that loaded no onnxruntime) is no change."""
    return [
        f"{f} {before[f]} → {after[f]}"
        for f in SOFTWARE_FIELDS
        if before.get(f) and after.get(f) and before[f] != after[f]
    ]


def _pick(section: dict | None, keys: tuple[str, ...]) -> dict:
    return {k: section[k] for k in keys if section and k in section}


def series_key(record: dict) -> str:
    """`<cell id>@<hash of what defines its work>` for a cell record."""
    cell = record["cell"]
    work = {
        "cell": _pick(cell, CELL_AXES),
        "mean_history": None if cell.get("mean_history") is None else round(cell["mean_history"], 4),
        "timer": _pick(record.get("timer"), ("method", "warmup_rounds")),
        "backend": _pick(record.get("backend"), BACKEND_OPTIONS),
    }
    serving = record.get("serving")
    if serving:
        sweep = serving.get("sweep") or {}
        work["serving"] = _pick(serving, SERVING_OPTIONS) | {
            "sweep": _pick(sweep, SWEEP_OPTIONS)
            | {"levels": [lv.get("concurrency") for lv in sweep.get("levels", [])]}
        }
    if "work" in record:  # a harness that states what defines the work outright
        work["declared"] = record["work"]
    return f"{cell['id']}@{short_hash(work)}"


def kernel_id(record: dict) -> str:
    """A readable id of a kernel micro-benchmark: op, provider, dtype and shape."""
    shape = "-".join(f"{k}{v}" for k, v in (record.get("shape") or {}).items())
    return f"{record['op']}-{record['provider']}-{record.get('dtype', '?')}-{shape}"


def kernel_series_key(record: dict) -> str:
    return f"{kernel_id(record)}@{short_hash(_pick(record, ('op', 'provider', 'dtype', 'shape')))}"
