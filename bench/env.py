"""What the record says about the machine and software: device, driver, library versions."""
from __future__ import annotations

import platform
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import torch

LIBRARIES = ("torch", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "triton", "tritonclient",
             "nvidia-pytriton", "pytest-benchmark", "hypothesis")


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_name() -> str:
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


# Distributions that share one import name: what is loaded decides, not what happens to be installed beside it.
MODULES = {"onnxruntime": "onnxruntime", "triton": "triton", "tritonclient": "tritonclient"}


def _loaded_versions() -> dict:
    """Versions of the modules this process really imported (onnxruntime vs onnxruntime-gpu on one path)."""
    out = {}
    for name, module in MODULES.items():
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, "__version__", None):
            out[name] = mod.__version__
    return out


def environment(device: str = "cpu") -> dict:
    """The record's `env` section for a cell on `device`."""
    return _static_environment(device) | {"loaded": _loaded_versions()}


@cache
def _static_environment(device: str = "cpu") -> dict:
    """Device, driver and installed library versions (read once per process and device)."""
    cuda = device.startswith("cuda")
    return {
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "driver": _driver() if cuda else None,
        "cuda": torch.version.cuda,
        "cpu": _cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": {name: v for name in LIBRARIES if (v := _version(name))} | {"torch": torch.__version__},
    }
