"""torch backends: `torch-cpu` (eager, compile) and `torch-cuda` (eager, compile, cudagraph).

Precision policy — weights cast, not autocast: the model's parameters and float inputs (the decode KV cache)
are cast to the cell's dtype and every op runs in it, as an exported fp16/bf16 engine would. Autocast would
keep some ops in fp32 and blur what the precision axis compares. (LayerNorm and softmax kernels on CUDA still
accumulate in fp32 internally, as torch does for half inputs.)

Item-table placement (models/embedding): the session's copy of the model holds its item table where
`model.embedding` says — on the device, in (pinned) host memory, or in host memory behind a device cache.
Every mode runs every placement: eager; compile (the lookup step of host/cached runs between the compiled
graphs, see models/embedding/placement.py); cudagraph (the step has no host sync, so it is captured with the
rest). Cells measuring a placement get fresh traffic each round (backends/embedding_traffic.py).
"""

from __future__ import annotations

import torch

from genrec_bench.backends.base import Backend, BucketRunner, Session
from genrec_bench.backends.embedding_traffic import Traffic, counter_record, embedding_record, step_share
from genrec_bench.backends.registry import register_backend
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendError, BackendUnavailable
from genrec_bench.models.embedding import HostBackedTable, phase_problem, placed_copy
from genrec_bench.models.embedding.spec import PLACEMENTS
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.recommender import PHASE_INPUTS, PhaseModule

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchSession(Session):
    def __init__(self, model: torch.nn.Module, cell: Cell, device: str):
        self.cell, self.device = cell, device
        self.dtype = DTYPES[cell.precision]
        problem = phase_problem(cell.phase, model.embedding.placement)
        if problem:
            raise BackendUnavailable(cell.backend, problem)
        self.model = placed_copy(model, device, self.dtype)
        if cell.mode == "compile" and isinstance(self.model.item_emb, HostBackedTable):
            self.model.item_emb.keep_out_of_compile()
        self.module = PhaseModule(self.model, cell.phase)
        # dynamic=False: each cell has one shape, and a graph specialised to it is what a deployment would
        # run.
        self.forward = torch.compile(self.module, dynamic=False) if cell.mode == "compile" else self.module
        self.timer = "cuda_event" if device.startswith("cuda") else "host_clock"
        self._captured: list = []  # (graph, run) of every capture: see _capture
        self._run = self._info = None
        # A cell comparing placements gets fresh batches each round (a cache fed one batch would always hit).
        self.measures_placement = bool(cell.embedding) or model.embedding.placement != "device"
        self.traffic: Traffic | None = None

    def runner(self, drawn):
        return self._runner(phase_inputs(self.model, self.cell.phase, drawn, self.device, self.dtype))

    def bucket_runner(self, drawn):
        """New users are copied into the buffers the closure reads, so one compiled graph or captured CUDA
        graph per bucket serves every batch of that size."""
        if self.cell.phase == "decode":
            raise BackendError(
                f"{self.cell.backend} | decode inputs carry a KV cache built per batch; bucket "
                f"runners take prefill and rank"
            )
        # Buffers of the bucket's own (never aliases of `drawn`), made and refilled in inference mode: on CUDA
        # they are inference tensors, which refuse in-place updates outside it.
        with torch.inference_mode():
            inputs = tuple(
                x.clone() for x in phase_inputs(self.model, self.cell.phase, drawn, self.device, self.dtype)
            )
        names = PHASE_INPUTS[self.cell.phase]

        @torch.inference_mode()
        def load(new):
            for buffer, name in zip(inputs, names):
                buffer.copy_(new[name], non_blocking=True)

        return BucketRunner(load=load, run=self._runner(inputs))

    @property
    def varies_inputs(self) -> bool:
        return self.traffic is not None

    def _runner(self, inputs):
        forward = self.forward
        if self.measures_placement and self.traffic is None:
            self.traffic = Traffic(self.model, forward, self.cell, self.device, self.dtype, inputs)
        elif (
            self.traffic is not None
        ):  # another input set (the oracle's checks): same pool, no second warm-up
            self.traffic.retarget(inputs)
        source = self.traffic.next if self.traffic else (lambda: inputs)

        @torch.inference_mode()
        def run():
            return forward(*source())

        self._run = run if self.cell.mode != "cudagraph" else self._capture(inputs)
        return self._run

    def _capture(self, inputs):
        forward, traffic = self.forward, self.traffic

        @torch.inference_mode()
        def run():
            return forward(*inputs)

        # Warm up on a side stream (allocator pools, cuBLAS handles), then capture one call; replays reuse the
        # captured input and output buffers, which is what the closure returns.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = run()
        # The graph reads the captured input buffers by address: they must outlive it. `run` holds them, so
        # the session keeps `run`; dropping it let the allocator hand the ids' memory to other tensors, and
        # the next replay gathered garbage ids. Every capture is kept: a scenario cell holds one per bucket.
        self._captured.append((graph, run))

        @torch.inference_mode()
        def replay():
            if traffic is not None:  # this round's batch into the captured input buffers (a few small copies)
                for static, fresh in zip(inputs, traffic.next()):
                    static.copy_(fresh)
            graph.replay()
            return static_out

        return replay

    def start_timed_rounds(self):
        table = self.model.item_emb
        if self.traffic is not None and isinstance(table, HostBackedTable):
            table.reset_counters()
            if self.model.embedding.cold:
                table.clear()

    def oracle_result(self, last_result):
        if self.traffic is None:
            return last_result
        self.traffic.pinned = True
        try:
            result = self._run()
        finally:
            self.traffic.pinned = False
        self.synchronize()
        return result

    def synchronize(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def info(self):
        if self._info is None:
            self._info = {
                "precision_policy": "weights cast (model.to(dtype)), no autocast",
                "mode": self.cell.mode,
                "device": self.device,
                "compile": (
                    {"dynamic": False, "backend": "inductor"} if self.cell.mode == "compile" else None
                ),
                "embedding": self._embedding_info(),
            }
        return self._info

    def _embedding_info(self) -> dict:
        record = embedding_record(self.model, self.cell.embedding, self.device, self.dtype)
        table = self.model.item_emb
        if self.traffic is None:
            return record
        record["traffic"] = self.traffic.traffic_record(self.device)
        if isinstance(table, HostBackedTable):
            record |= counter_record(table)  # first: the instrumented pass below calls the table again
            graphed = self.cell.mode == "cudagraph"  # a graph cannot be instrumented inside: eager calls
            record["cache_time"] = step_share(
                table,
                self.module if graphed else self.forward,
                self.traffic.pool,
                self.device,
                "eager" if graphed else self.cell.mode,
            )
        if self.model.embedding.placement == "cached":
            record["warm"] = self.traffic.warm_record(self.model.embedding.cold)
        return record

    def close(self):
        self._captured = []
        self._run = self.traffic = None
        self.model = self.forward = self.module = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


@register_backend
class TorchCPU(Backend):
    name = "torch-cpu"
    modes = ("eager", "compile")
    placements = PLACEMENTS  # host and cached are simulated with the CPU as "device"

    def prepare_impl(self, model, cell, context):
        return TorchSession(model, cell, "cpu")


@register_backend
class TorchCUDA(Backend):
    name = "torch-cuda"
    modes = ("eager", "compile", "cudagraph")
    device = "cuda:0"
    placements = PLACEMENTS

    def availability(self, context=None):
        if not torch.cuda.is_available():
            return (
                False,
                f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)",
            )
        return True, ""

    def prepare_impl(self, model, cell, context):
        return TorchSession(model, cell, self.device)
