"""Raw figures behind the embedding placements, on the GPU machine: what a zero-copy read of pinned host
memory moves per second, what the cache's lookup step costs alone (eager and in a CUDA graph), how fast the
`large` preset's workload is drawn (CPU and GPU) and its item table initialised.

    python -m genrec_bench.bench.embedding_probe --out probe.json

Times are medians of CUDA events (perf_counter on the CPU) after a warm-up; each figure says its sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import torch

from genrec_bench.bench.stats import percentile
from genrec_bench.kernels.row_fetch import fetch_rows
from genrec_bench.models import preset
from genrec_bench.models.embedding import EmbeddingCache
from genrec_bench.models.embedding.table_init import chunked_normal
from genrec_bench.models.workload import zipf_items

REPEATS = 20


def cuda_ms(fn, repeats: int = REPEATS) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return percentile(times, 50)


def host_ms(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return percentile(times, 50)


def zero_copy(host: torch.Tensor, counts: tuple[int, ...]) -> list[dict]:
    """Rows per second read from a pinned host table in place, beside the same gather from device memory."""
    rows, dim = host.shape
    on_device = host.cuda()
    out = []
    for n in counts:
        ids = torch.randint(1, rows, (n,), device="cuda")
        mask, dest_index = torch.ones(n, dtype=torch.bool, device="cuda"), torch.arange(n, device="cuda")
        dest = torch.empty(n, dim, dtype=torch.float16, device="cuda")
        pcie = cuda_ms(lambda: fetch_rows(dest, dest_index, host, ids, mask))  # noqa: B023
        local = cuda_ms(lambda: fetch_rows(dest, dest_index, on_device, ids, mask))  # noqa: B023
        moved = n * dim * 2
        out.append(
            {
                "rows": n,
                "row_bytes": dim * 2,
                "host_ms": pcie,
                "host_gb_s": moved / pcie / 1e6,
                "device_ms": local,
                "device_gb_s": moved / local / 1e6,
            }
        )
    return out


def cache_step(host: torch.Tensor, fraction: float, counts: tuple[int, ...]) -> list[dict]:
    """The lookup step alone on Zipf ids (the large preset's law over the host table's rows): eager over fresh
    batches, and a CUDA graph replaying one batch (all hits after its first replay)."""
    num_items = host.shape[0]
    cfg = dataclasses.replace(preset("large"), num_items=num_items, name=f"large-{num_items}")
    out = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for n in counts:
        cache = EmbeddingCache(host, int(fraction * num_items), policy="lfu", device="cuda")
        pool = [zipf_items(cfg, (n,), gen) for _ in range(64)]
        for ids in pool * 4:  # fill the cache a little; the figure is the step's cost, not a hit rate
            cache.lookup(ids)
        turn = iter(range(10**9))
        eager = cuda_ms(lambda: cache.lookup(pool[next(turn) % 64]))  # noqa: B023
        static = pool[0].clone()
        cache.lookup(static)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            cache.lookup(static)
        graphed = cuda_ms(graph.replay)
        out.append({"ids": n, "cache_rows": cache.slots, "eager_ms": eager, "graph_ms": graphed})
    return out


def drawing(counts: tuple[int, ...]) -> list[dict]:
    cfg = preset("large")
    out = []
    for device in ("cpu", "cuda"):
        gen = torch.Generator(device=device).manual_seed(0)
        zipf_items(cfg, (10,), gen)  # builds the inverse-CDF table of this device once
        for n in counts:
            timer = cuda_ms if device == "cuda" else host_ms
            ms = timer(lambda: zipf_items(cfg, (n,), gen))  # noqa: B023
            out.append({"device": device, "ids": n, "ms": ms, "ids_per_s": n / ms * 1e3})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.embedding_probe", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("embedding_probe: needs a CUDA device", file=sys.stderr)
        return 2
    cfg = preset("large")
    figures = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    start = time.perf_counter()
    chunked_normal(cfg.num_items, cfg.d_model, cfg.d_model**-0.5, cfg.seed)
    figures["large_table_init_s"] = time.perf_counter() - start
    figures["drawing"] = drawing((100_000, 1_000_000))
    host = torch.empty(4_000_000, cfg.d_model, dtype=torch.float16, pin_memory=True)  # values do not matter
    figures["zero_copy"] = zero_copy(host, (4096, 32768, 262144))
    figures["cache_step"] = cache_step(host, 0.10, (24576, 98304))
    text = json.dumps(figures, indent=1)
    print(text, flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
