"""The GPU-only paths of the embedding placements, on the GPU machine: the zero-copy read of pinned host
memory, the lookup step without a host sync, and cached/host cells through torch-cuda in every mode under the
oracle. Skipped with the reason where there is no CUDA device."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.backends import get_backend
from genrec_bench.bench.oracle import compare
from genrec_bench.bench.reference_model import model_for, reference
from genrec_bench.bench.tolerances import limits_for
from genrec_bench.kernels.row_fetch import fetch_rows
from genrec_bench.matrices.cells import Cell
from genrec_bench.models import draw, preset
from genrec_bench.models.embedding import EmbeddingCache, HostTable
from genrec_bench.models.embedding.spec import resolve

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU machine)"),
]


def pinned_table(rows: int, dim: int, dtype=torch.float16) -> torch.Tensor:
    table = torch.randn(rows, dim, generator=torch.Generator().manual_seed(0)).to(dtype).pin_memory()
    table[0] = 0
    return table


def test_zero_copy_fetch_reads_pinned_host_memory_in_place():
    host = pinned_table(5000, 128)
    ids = torch.randint(0, 5000, (3000,), device="cuda")
    mask = torch.rand(3000, device="cuda") < 0.3
    dest_index = torch.randperm(3000, device="cuda")
    got = torch.zeros(3000, 128, dtype=torch.float16, device="cuda")
    fetch_rows(got, dest_index, host, ids, mask)  # default kernel on a CUDA buffer: the Triton zero-copy read
    want = torch.zeros(3000, 128, dtype=torch.float16)
    fetch_rows(want, dest_index.cpu(), host, ids.cpu(), mask.cpu(), kernel="torch")
    assert torch.equal(got.cpu(), want)
    with pytest.raises(ValueError, match="must be pinned"):
        fetch_rows(got, dest_index, host.clone(), ids, mask)  # pageable memory is not mapped


@pytest.mark.parametrize("kind", ["cached", "host"])
def test_the_lookup_step_never_syncs_with_the_host(kind):
    host = pinned_table(20_000, 64)
    device = torch.device("cuda")
    table = (
        EmbeddingCache(host, 2000, policy="lfu", device=device)
        if kind == "cached"
        else HostTable(host, device, torch.float16)
    )
    step = table.lookup if kind == "cached" else table.step
    ids = torch.randint(0, 20_000, (4096,), device=device)
    step(ids)  # the first call sizes the per-call buffers (an allocation, before any graph)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            step(torch.randint(0, 20_000, (4096,), device=device))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def run_cell_once(label: str, mode: str, calls: int = 6):
    """Prepare a tiny rank cell on torch-cuda, check the oracle first and after `calls` fresh rounds."""
    cell = Cell("tiny", "torch-cuda", mode, "fp32", 8, 32, "rank", embedding=label)
    cfg = preset("tiny")
    drawn = draw(cfg, "rank", 8, 32, seed=11)
    ref = reference("tiny", "rank", drawn)
    model = model_for("tiny", "torch").variant(
        embedding=resolve(cfg.embedding, {"warm_lookups": 5000, "warm_batches": 2, "pool_batches": 8}, label)
    )
    with get_backend("torch-cuda").prepare(model, cell) as session:
        run = session.runner(drawn)
        first = session.fetch(run())
        session.start_timed_rounds()
        for _ in range(calls):
            last = run()
        session.synchronize()
        info = session.info()
        again = session.fetch(session.oracle_result(last))
    for scores, items in (first, again):
        verdict = compare(ref, scores, items, limits_for("fp32", "rank"))
        assert verdict.passed, verdict.message
    return info["embedding"]


@pytest.mark.parametrize("mode", ["eager", "cudagraph"])
@pytest.mark.parametrize("label", ["cached-10pct", "host"])
def test_off_device_cells_pass_the_oracle_in_eager_and_graphs(label, mode):
    section = run_cell_once(label, mode)
    assert section["calls"] == 6 and section["per_call"]["lookups"] > 0
    assert section["zero_copy"].startswith("Triton masked row fetch")
    if label.startswith("cached"):
        assert 0 <= section["hit_rate"] <= 1 and section["warm"]["warmed"] is True
    assert 0 < section["cache_time"]["share"] < 1


def test_cached_cells_compile_with_the_lookup_step_outside_the_graphs():
    section = run_cell_once("cached-10pct", "compile", calls=3)
    assert section["calls"] == 3 and section["cache_time"]["measured_in"] == "compile"
