"""What the record says about the machine and software: device, driver, library versions."""

from __future__ import annotations

import platform
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import torch

LIBRARIES = (
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "triton",
    "tritonclient",
    "nvidia-pytriton",
    "pytest-benchmark",
    "hypothesis",
)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (the platform's processor string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        return driver.decode() if isinstance(driver, bytes) else driver
    except Exception:
        return None


# Distributions that share one import name: what is loaded decides, not what happens to be installed beside
# it.
MODULES = {"onnxruntime": "onnxruntime", "triton": "triton", "tritonclient": "tritonclient"}


def _loaded_versions() -> dict:
    """Versions of the modules this process really imported (onnxruntime vs onnxruntime-gpu on one path)."""
    out = {}
    for name, module in MODULES.items():
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, "__version__", None):
            out[name] = mod.__version__
    return out


def gpu_facts() -> dict:
    """The machine's GPUs as the history's hardware fingerprint needs them: count, and the first one's name,
    memory and compute capability (None where there is no CUDA device)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not count:
        return {"gpu_name": None, "gpu_count": 0, "gpu_memory_mib": None, "compute_capability": None}
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu_name": props.name,
        "gpu_count": count,
        "gpu_memory_mib": props.total_memory // 2**20,
        "compute_capability": f"{props.major}.{props.minor}",
    }


def environment(device: str = "cpu") -> dict:
    """The record's `env` section for a cell on `device`."""
    return _static_environment(device) | {"loaded": _loaded_versions()}


@cache
def _static_environment(device: str = "cpu") -> dict:
    """Device, driver and installed library versions (read once per process and device)."""
    cuda = device.startswith("cuda")
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "driver": _driver() if cuda else None,
        "cuda": torch.version.cuda,
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": {name: v for name in LIBRARIES if (v := _version(name))} | {"torch": torch.__version__},
        **gpu_facts(),
    }
