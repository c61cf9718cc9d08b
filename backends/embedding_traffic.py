"""Fresh traffic for the cells that measure an embedding placement, and the record's `embedding` section.

A cache fed the same batch every round hits on everything after the first call, so a cell with an embedding
label (or a preset placing its table off the device) does not repeat its inputs:
- the closure's first call runs the cell's own inputs (the oracle checks them), later calls rotate through
  `pool_batches` fresh batches of the same workload, drawn up front on the session's device (models.draw with
  device=) so drawing never shares the timed region or the host's time with the model;
- before that, the cache is warmed: `warm_lookups` ids of the workload's item law through the cache step alone
  (in calls of the cell's own id count: a serving cache is in steady state, which a few dozen batches do not
  reach), then `warm_batches` further fresh batches through the whole model; none of it is timed;
- the counters are reset after the timing's warm-up rounds, so the hit rate covers the timed rounds only; a
  cold cell (no warm traffic) also has its cache emptied at that moment;
- after the timed rounds the oracle's inputs run once more (`oracle_result`): the last timed round served
  another batch, and a cache must still give the right answer after many calls.
Every device/host/cached cell of a comparison gets the same traffic, so their latencies compare.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from genrec_bench.models.embedding import HostBackedTable, StepTimer
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.recommender import ITEM_ID_INPUTS, PHASE_INPUTS
from genrec_bench.models.workload import draw, zipf_items

POOL_SEED, WARM_SEED, LOOKUP_SEED = 10_000, 20_000, 30_000
# Calls of the instrumented pass that measures the lookup step's share of a call (outside the timed rounds).
SHARE_CALLS = 10
ZERO_COPY = {
    "cuda": "Triton masked row fetch reading the pinned host table in place over PCIe (zero-copy)",
    "cpu": "CPU simulation: host table and cache are both in CPU memory, rows copied by index_copy",
}


class Traffic:
    """The inputs a cell's closure runs on, and the warm-up that came before them."""

    def __init__(self, model, forward, cell, device: str, dtype: torch.dtype, oracle: tuple):
        self.model, self.cell, self.spec = model, cell, model.embedding
        self.oracle = tuple(t.clone() for t in oracle)  # the closure's own buffers may be overwritten
        self.calls, self.pinned = 0, False
        start = time.perf_counter()
        self.pool = [self._batch(POOL_SEED + i, device, dtype) for i in range(self.spec.pool_batches)]
        _sync(device)
        self.draw_ms = (time.perf_counter() - start) * 1e3 / max(1, len(self.pool))
        start = time.perf_counter()
        self.lookup_calls = self._warm_lookups(oracle, device)
        with torch.inference_mode():
            for i in range(self.spec.warm_batches):
                forward(*self._batch(WARM_SEED + i, device, dtype))
        _sync(device)
        self.warm_s = time.perf_counter() - start

    def _batch(self, seed: int, device: str, dtype: torch.dtype) -> tuple:
        cfg, cell = self.model.cfg, self.cell
        drawn = draw(cfg, cell.phase, cell.batch, cell.seq_len, seed=seed, device=device)
        return phase_inputs(self.model, cell.phase, drawn, device, dtype)

    def _warm_lookups(self, oracle: tuple, device: str) -> int:
        table = self.model.item_emb
        if self.spec.warm_lookups == 0 or not isinstance(table, HostBackedTable) or table.placement == "host":
            return 0
        names = PHASE_INPUTS[self.cell.phase]
        chunk = sum(oracle[names.index(name)].numel() for name in ITEM_ID_INPUTS[self.cell.phase])
        gen = torch.Generator(device=device).manual_seed(LOOKUP_SEED)
        calls = math.ceil(self.spec.warm_lookups / chunk)
        for _ in range(calls):
            table.step(zipf_items(self.model.cfg, (chunk,), gen))
        return calls

    def retarget(self, oracle: tuple) -> None:
        """The cell's own inputs are now `oracle` (another input set of the same shape): its first call runs
        them, as for the first set; the warmed cache and the pool stay."""
        self.oracle = tuple(t.clone() for t in oracle)
        self.calls = 0

    def next(self) -> tuple:
        """The next call's inputs: the oracle's on the first call and while pinned, else the pool's next."""
        inputs = (
            self.oracle if self.calls == 0 or self.pinned else self.pool[(self.calls - 1) % len(self.pool)]
        )
        self.calls += 1
        return inputs

    def warm_record(self, cold: bool) -> dict:
        spec = self.spec
        how = (
            "cold: the cache was emptied right before the first timed round"
            if cold
            else f"{spec.warm_lookups} ids of the workload's item law through the cache step alone "
            f"({self.lookup_calls} calls), then {spec.warm_batches} fresh batches through the whole model, "
            f"then the timing's warm-up rounds (pool batches)"
        )
        return {
            "warmed": not cold,
            "warm_lookups": spec.warm_lookups,
            "warm_batches": spec.warm_batches,
            "how": how,
            "warm_s": round(self.warm_s, 3),
        }

    def traffic_record(self, device: str) -> dict:
        return {
            "distinct_batches": len(self.pool),
            "drawn_on": device,
            "draw_ms_per_batch": round(self.draw_ms, 3),
            "rotation": "first call: the oracle's inputs; then the pool in turn (a round past the pool's "
            "size repeats a batch)",
        }


def step_share(table: HostBackedTable, forward, pool: list, device: str, measured_in: str) -> dict:
    """The lookup step's share of a call, from an instrumented pass of SHARE_CALLS calls over pool batches:
    CUDA events (perf_counter on CPU) around the step and around the whole call. Run after the timed rounds
    and their counters were read, never inside them."""
    timer, whole = StepTimer(torch.device(device)), StepTimer(torch.device(device))
    table.step_timer = timer
    try:
        with torch.inference_mode():
            for inputs in pool[:SHARE_CALLS]:
                with whole:
                    forward(*inputs)
    finally:
        table.step_timer = None
    step, call = statistics.median(timer.samples_ms()), statistics.median(whole.samples_ms())
    return {
        "share": step / call if call > 0 else None,
        "step_ms_p50": step,
        "call_ms_p50": call,
        "calls": len(pool[:SHARE_CALLS]),
        "measured_in": measured_in,
        "method": "CUDA events (perf_counter on CPU) around the lookup step and around the call, in a "
        "separate pass after the timed rounds; never inside them",
    }


def embedding_record(model, label: str, device: str, dtype: torch.dtype) -> dict:
    """The placement half of the record's `embedding` section (counters come from `counter_record`)."""
    spec, table = model.embedding, model.item_emb
    rows, dim = model.cfg.num_items, model.cfg.d_model
    stored = table.host.dtype if isinstance(table, HostBackedTable) else table.weight.dtype
    row_bytes = dim * torch.empty((), dtype=stored).element_size()
    out = {
        "placement": spec.placement,
        "label": label,
        "storage": str(stored).removeprefix("torch."),
        "table": {"rows": rows, "dim": dim, "row_bytes": row_bytes, "mb": rows * row_bytes / 2**20},
        "policy": None,
        "budget": None,
        "zero_copy": None,
    }
    if isinstance(table, HostBackedTable):
        out["zero_copy"] = ZERO_COPY["cuda" if torch.device(device).type == "cuda" else "cpu"]
    if spec.placement == "cached":
        cache = table.cache
        index_mb = (cache.slot_of.numel() * 4 + cache.id_of.numel() * 8 * 3) / 2**20
        out["policy"], out["ways"] = spec.policy, cache.ways
        out["budget"] = {
            "fraction": spec.fraction,
            "gpu_budget_mb": spec.gpu_budget_mb,
            "rows_cached": cache.slots,
            "sets": cache.sets,
            "cache_mb": cache.slots * row_bytes / 2**20,
            "index_mb": index_mb,
        }
    return out


def counter_record(table: HostBackedTable) -> dict:
    """Hit rates and per-call traffic from the counters (a device sync: read after the timed rounds)."""
    counts = table.stats()
    calls = max(1, counts["calls"])
    lookups = counts["lookups"]
    out = {
        "counted_over": "the timed rounds only (counters reset after the timing's warm-up rounds)",
        "calls": counts["calls"],
        "counters": counts,
        "hit_rate": counts["hit_lookups"] / lookups if lookups and "hit_lookups" in counts else None,
        "unique_hit_rate": (
            counts["unique_hits"] / counts["unique_ids"] if counts.get("unique_ids") else None
        ),
        "per_call": {
            "lookups": lookups / calls,
            "rows_from_host": counts["misses"] / calls,
            "bytes_from_host": counts["bytes_from_host"] / calls,
        },
    }
    if "rows_occupied" in counts:
        out["rows_occupied"] = counts["rows_occupied"]
    return out


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
