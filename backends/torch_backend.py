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

from backends.base import Backend, Session
from backends.embedding_traffic import Traffic, counter_record, embedding_record, step_share
from backends.registry import register_backend
from matrices.cells import Cell
from matrices.embedding import PLACEMENTS
from matrices.errors import BackendUnavailable
from models.embedding import HostBackedTable, phase_problem, placed_copy
from models.inputs import phase_inputs
from models.recommender import PhaseModule

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
        # dynamic=False: each cell has one shape, and a graph specialised to it is what a deployment would run.
        self.forward = torch.compile(self.module, dynamic=False) if cell.mode == "compile" else self.module
        self.timer = "cuda_event" if device.startswith("cuda") else "host_clock"
        self._graph = self._captured_run = self._run = self._info = None
        # A cell comparing placements gets fresh batches each round (a cache fed one batch would always hit).
        self.measures_placement = bool(cell.embedding) or model.embedding.placement != "device"
        self.traffic: Traffic | None = None

    def runner(self, drawn):
        inputs = phase_inputs(self.model, self.cell.phase, drawn, self.device, self.dtype)
        forward = self.forward
        if self.measures_placement:
            self.traffic = Traffic(self.model, forward, self.cell, self.device, self.dtype, inputs)
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
        # the next replay gathered garbage ids.
        self._graph, self._captured_run = graph, run

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
            self._info = {"precision_policy": "weights cast (model.to(dtype)), no autocast",
                          "mode": self.cell.mode, "device": self.device,
                          "compile": ({"dynamic": False, "backend": "inductor"} if self.cell.mode == "compile"
                                      else None),
                          "embedding": self._embedding_info()}
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
            record["cache_time"] = step_share(table, self.module if graphed else self.forward, self.traffic.pool,
                                              self.device, "eager" if graphed else self.cell.mode)
        if self.model.embedding.placement == "cached":
            record["warm"] = self.traffic.warm_record(self.model.embedding.cold)
        return record

    def close(self):
        self._graph = self._captured_run = self._run = self.traffic = None
        self.model = self.forward = self.module = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


@register_backend
class TorchCPU(Backend):
    name = "torch-cpu"
    modes = ("eager", "compile")
    placements = PLACEMENTS  # host and cached are simulated with the CPU as "device"

    def prepare_impl(self, model, cell):
        return TorchSession(model, cell, "cpu")


@register_backend
class TorchCUDA(Backend):
    name = "torch-cuda"
    modes = ("eager", "compile", "cudagraph")
    device = "cuda:0"
    placements = PLACEMENTS

    def availability(self):
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
        return True, ""

    def prepare_impl(self, model, cell):
        return TorchSession(model, cell, self.device)
