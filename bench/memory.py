"""Memory during a cell: host peak RSS, and on CUDA the NVML device-used peak, this process's NVML usage and
torch's allocator peak.

A background thread samples RSS and NVML every few milliseconds, because both are instantaneous readings and
the peak of a cell lasts only as long as its largest intermediate.
"""

from __future__ import annotations

import gc
import os
import threading

import psutil
import torch

MB = 1024 * 1024


class _Nvml:
    """The NVML readings we need, or the reason there are none (no driver, no GPU, old driver)."""

    def __init__(self, device_index: int):
        self.handle, self.reason = None, ""
        try:
            import pynvml  # provided by nvidia-ml-py

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        except Exception as exc:  # NVML absent or refusing is a fact to record, not a failure
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"

    def device_used(self) -> int | None:
        if self.handle is None:
            return None
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def process_used(self, pid: int) -> int | None:
        """This process's usage where the driver reports it (it does not inside some containers)."""
        if self.handle is None:
            return None
        try:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:
            return None
        for proc in procs:
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory)
        return None


class MemoryProbe:
    """`with MemoryProbe(device) as probe: ...` then `probe.result()`; peaks cover the whole `with` block."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.005):
        self.device, self.interval_s = device, interval_s
        self.cuda = device.startswith("cuda")
        self._proc = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._peak_rss = self._peak_dev = self._peak_proc = 0
        self._nvml: _Nvml | None = None
        self._torch_peak: int | None = None  # set on exit; until then result() reads the peak so far

    def _sample(self):
        self._peak_rss = max(self._peak_rss, self._proc.memory_info().rss)
        if self._nvml is not None:
            self._peak_dev = max(self._peak_dev, self._nvml.device_used() or 0)
            self._peak_proc = max(self._peak_proc, self._nvml.process_used(self._proc.pid) or 0)

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self):
        self._start_rss = self._proc.memory_info().rss
        if self.cuda:
            index = torch.device(self.device).index or 0
            self._nvml = _Nvml(index)
            # Hand back what earlier cells left in torch's cache, so the NVML start reading is the floor this
            # cell grows from; otherwise it reuses cached blocks and its device delta reads as zero.
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start_dev = self._nvml.device_used()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="memory-probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self.cuda:
            torch.cuda.synchronize(self.device)
            self._torch_peak = torch.cuda.max_memory_allocated(self.device)
        self._sample()
        return False

    def result(self) -> dict:
        """The record's `memory` section; sizes in MiB, null where this machine cannot measure them."""
        out = {
            "host_peak_rss_mb": self._peak_rss / MB,
            "host_rss_start_mb": self._start_rss / MB,
            "device_used_peak_mb": None,
            "device_used_start_mb": None,
            "process_used_peak_mb": None,
            "torch_max_allocated_mb": None,
            "sampling_interval_ms": self.interval_s * 1000,
            "note": "CPU cell: no device memory" if not self.cuda else "",
        }
        if self.cuda:
            # Called inside the block too (a worker sends the record as soon as the cell is timed): the peak
            # so far then, the whole block's once it has ended.
            peak = (
                self._torch_peak
                if self._torch_peak is not None
                else torch.cuda.max_memory_allocated(self.device)
            )
            out["torch_max_allocated_mb"] = peak / MB
            if self._nvml is not None and self._nvml.handle is not None:
                out["device_used_peak_mb"] = self._peak_dev / MB
                out["device_used_start_mb"] = (self._start_dev or 0) / MB
                out["process_used_peak_mb"] = self._peak_proc / MB if self._peak_proc else None
                if not self._peak_proc:
                    out["note"] = "the driver reports no per-process usage here"
            else:
                out["note"] = self._nvml.reason if self._nvml else "NVML not initialised"
        return out
