"""Embedding placements: where a placed model's item table lives, behind the lookup interface the recommender
uses (`remap(*ids) → (table, ids')` with table[ids'] the rows of ids, and `catalogue()`).

- device: a plain nn.Embedding on the device (today's behaviour; ONNX export sees exactly that);
- host:   the table in host memory (pinned on a GPU machine); every lookup reads its row in place over PCIe
          (zero-copy, kernels/row_fetch) into a per-call staging buffer on the device; no reuse across calls;
- cached: the same host table plus a device cache of it (models/embedding/cache.py), managed per call.

On a machine without a GPU the same code runs with the CPU as "device": the host table is an ordinary tensor
and the fetch is a torch index_copy. Under torch.compile the lookup step of host/cached runs between the
compiled graphs (`keep_out_of_compile`): it updates the cache's index and state in place, which compiled code
would functionalise into copies of the whole index every call. It has no host sync, so CUDA graphs capture it.

Counters stay on the device and are read only through `stats()`, outside timed regions.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from genrec_bench.kernels.row_fetch import fetch_rows
from genrec_bench.models.embedding.cache import EmbeddingCache
from genrec_bench.models.embedding.spec import EmbeddingError, EmbeddingSpec

STORAGE_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
CATALOGUE_PHASES = ("prefill", "decode")


def phase_problem(phase: str, placement: str) -> str | None:
    """Why `phase` cannot run with `placement` (None when it can): the full-catalogue score needs every
    row."""
    if placement == "device" or phase not in CATALOGUE_PHASES:
        return None
    return (
        f"{phase} scores the full catalogue (state @ every item row): with placement={placement} the table "
        f"lives in host memory, so every call would stream all of it over PCIe; only rank runs off-device"
    )


class StepTimer:
    """Times the lookup step of an instrumented pass: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pairs: list = []

    def __enter__(self):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self.pairs.append((start, end))
        else:
            self.pairs.append([time.perf_counter(), None])
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self.pairs[-1][1].record()
        else:
            self.pairs[-1][1] = time.perf_counter()
        return False

    def samples_ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in self.pairs]
        return [(end - start) * 1e3 for start, end in self.pairs]


class HostBackedTable(nn.Module):
    """The item table in host memory, looked up from `device`; subclasses say how ids reach their rows.

    The host table and all state are plain attributes, not buffers: `.to()` and state_dict leave them
    alone."""

    placement = "host"

    def __init__(self, host: torch.Tensor, device: torch.device, dtype: torch.dtype):
        super().__init__()
        self.host, self.device, self.dtype = host, device, dtype
        self.row_bytes = host.shape[1] * host.element_size()
        self.step_timer: StepTimer | None = None  # set only by an instrumented pass, never in timed rounds

    def keep_out_of_compile(self) -> None:
        """Run the lookup step eagerly between torch.compile's graphs (a graph break at `remap`). Applied by a
        compiling backend only: torch.compiler imports torch._dynamo, seconds that other processes (Triton's
        model stubs) should not pay at import."""
        self.remap = torch.compiler.disable(self.remap)

    def remap(self, *ids: torch.Tensor):
        """(table, ids') for all id tensors of one call, in one step."""
        flat = torch.cat([t.reshape(-1) for t in ids])
        if self.step_timer is None:
            table, local = self.step(flat)
        else:
            with self.step_timer:
                table, local = self.step(flat)
        parts = torch.split(local, [t.numel() for t in ids])
        return table, tuple(part.view(t.shape) for part, t in zip(parts, ids))

    def step(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def catalogue(self) -> torch.Tensor:
        """The whole table for a full-catalogue score: only where host and compute are one (the CPU)."""
        if self.host.device != self.device:
            raise EmbeddingError(phase_problem("prefill", self.placement))
        return self.host.to(self.dtype)

    def stats(self) -> dict:
        """The counters since the last reset, as the record's `embedding` section counts them (a device
        sync)."""
        raise NotImplementedError

    def reset_counters(self) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        """Forget what is cached (a cold start); nothing to forget without a cache."""


class HostTable(HostBackedTable):
    """Every lookup reads its row from host memory; padding (id 0) reads nothing and maps to a zero row."""

    placement = "host"

    def __init__(self, host, device, dtype):
        super().__init__(host, device, dtype)
        self.capacity = -1
        with torch.inference_mode():
            self.counters = torch.zeros(2, dtype=torch.int64, device=device)  # calls, rows read from host

    @torch.inference_mode()
    def step(self, flat):
        n = flat.numel()
        if (
            n > self.capacity
        ):  # one staging row per id plus a zero row; grows on a first call, never in a graph
            self.staging = torch.zeros(n + 1, self.host.shape[1], dtype=self.host.dtype, device=self.device)
            self.positions = torch.arange(n, device=self.device)
            self.capacity = n
        pos, real = self.positions[:n], flat != 0
        fetch_rows(self.staging, pos, self.host, flat, real)
        self.counters += torch.stack([torch.ones_like(self.counters[0]), real.sum()])
        return self.staging, torch.where(real, pos, self.capacity)

    def stats(self):
        calls, rows = self.counters.tolist()
        return {"calls": calls, "lookups": rows, "misses": rows, "bytes_from_host": rows * self.row_bytes}

    @torch.inference_mode()
    def reset_counters(self):
        self.counters.zero_()


class CachedTable(HostBackedTable):
    """Lookups go through a device cache of the host table (one cache step per call)."""

    placement = "cached"

    def __init__(self, host, device, dtype, cache: EmbeddingCache):
        super().__init__(host, device, dtype)
        self.cache = cache

    def step(self, flat):
        rows = self.cache.lookup(flat)  # first: a first call may grow (reallocate) the storage
        return self.cache.storage, rows

    def stats(self):
        counts = self.cache.read_counters()
        return counts | {
            "bytes_from_host": counts["misses"] * self.row_bytes,
            "rows_occupied": self.cache.occupied(),
        }

    def reset_counters(self):
        self.cache.reset_counters()

    def clear(self):
        self.cache.clear()


# ------------------------------------------------------------------------------------------ placing a model


def storage_dtype(spec: EmbeddingSpec, dtype: torch.dtype) -> torch.dtype:
    """The dtype rows are stored in: the model's (`auto`) or the spec's."""
    return dtype if spec.storage == "auto" else STORAGE_DTYPES[spec.storage]


def cache_rows(spec: EmbeddingSpec, num_items: int, row_bytes: int) -> int:
    """The cache budget in rows: a share of the table's rows, or what gpu_budget_mb MiB hold."""
    if spec.fraction is not None:
        return max(1, math.ceil(spec.fraction * num_items))
    return max(1, int(spec.gpu_budget_mb * 2**20 // row_bytes))


def host_copy(weight: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The host-memory table: pinned when a GPU reads it, else the source weights themselves where the dtype
    matches (read-only: no placement ever writes it)."""
    if device.type != "cuda":
        return weight.detach().to(dtype)
    host = torch.empty(weight.shape, dtype=dtype, pin_memory=True)
    host.copy_(weight.detach())
    return host


def item_table_for(
    spec: EmbeddingSpec, weight: torch.Tensor, device: torch.device, dtype: torch.dtype
) -> nn.Module:
    """The item table module of `spec`'s placement, built from the fp32 source weights."""
    if spec.placement == "device":
        # A copy even where device and dtype match, as deepcopy + .to() made one: the source weights may be
        # inference tensors (built under inference_mode), which a new Parameter may not wrap.
        copied = weight.detach().to(device=device, dtype=dtype, copy=True)
        return nn.Embedding(*weight.shape, padding_idx=0, _weight=copied)
    host = host_copy(weight, storage_dtype(spec, dtype), device)
    if spec.placement == "host":
        return HostTable(host, device, dtype)
    rows = cache_rows(spec, host.shape[0], host.shape[1] * host.element_size())
    return CachedTable(
        host, device, dtype, EmbeddingCache(host, rows, policy=spec.policy, ways=spec.ways, device=device)
    )


def placed_copy(model: nn.Module, device: torch.device | str, dtype: torch.dtype) -> nn.Module:
    """A copy of `model` on `device` in `dtype` with its item table placed as `model.embedding` says.

    The item table is never deep-copied (the large preset's is 10 GB in fp32): each placement builds its own
    copy from the source weights; everything else is deep-copied and cast as before."""
    device = torch.device(device)
    source = model.item_emb
    if not isinstance(source, nn.Embedding):
        raise EmbeddingError("placed_copy | the model's item table is already placed; place the source model")
    placed = copy.deepcopy(model, memo={id(source): nn.Identity()}).to(device=device, dtype=dtype)
    placed.item_emb = item_table_for(model.embedding, source.weight, device, dtype)
    return placed.eval()
