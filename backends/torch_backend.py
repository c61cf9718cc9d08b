"""torch backends: `torch-cpu` (eager, compile) and `torch-cuda` (eager, compile, cudagraph).

Precision policy — weights cast, not autocast: the model's parameters and float inputs (the decode KV cache)
are cast to the cell's dtype and every op runs in it, as an exported fp16/bf16 engine would. Autocast would
keep some ops in fp32 and blur what the precision axis compares. (LayerNorm and softmax kernels on CUDA still
accumulate in fp32 internally, as torch does for half inputs.)
"""
from __future__ import annotations

import copy

import torch

from genrec_bench.backends.base import Backend, BucketRunner, Session
from genrec_bench.backends.registry import register_backend
from genrec_bench.matrices.cells import Cell
from genrec_bench.matrices.errors import BackendError
from genrec_bench.models.inputs import phase_inputs
from genrec_bench.models.recommender import PHASE_INPUTS, PhaseModule

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchSession(Session):
    def __init__(self, model: torch.nn.Module, cell: Cell, device: str):
        self.cell, self.device = cell, device
        self.dtype = DTYPES[cell.precision]
        self.model = copy.deepcopy(model).to(device=device, dtype=self.dtype).eval()
        module = PhaseModule(self.model, cell.phase)
        # dynamic=False: each cell has one shape, and a graph specialised to it is what a deployment would run.
        self.forward = torch.compile(module, dynamic=False) if cell.mode == "compile" else module
        self.timer = "cuda_event" if device.startswith("cuda") else "host_clock"
        self._captured: list = []  # (graph, run) of every capture: see _capture

    def runner(self, drawn):
        return self._runner(phase_inputs(self.model, self.cell.phase, drawn, self.device, self.dtype))

    def bucket_runner(self, drawn):
        """New users are copied into the buffers the closure reads, so one compiled graph or captured CUDA graph
        per bucket serves every batch of that size."""
        if self.cell.phase == "decode":
            raise BackendError(f"{self.cell.backend} | decode inputs carry a KV cache built per batch; bucket "
                               f"runners take prefill and rank")
        # Buffers of the bucket's own (never aliases of `drawn`), made and refilled in inference mode: on CUDA
        # they are inference tensors, which refuse in-place updates outside it.
        with torch.inference_mode():
            inputs = tuple(x.clone() for x in phase_inputs(self.model, self.cell.phase, drawn, self.device,
                                                            self.dtype))
        names = PHASE_INPUTS[self.cell.phase]

        @torch.inference_mode()
        def load(new):
            for buffer, name in zip(inputs, names):
                buffer.copy_(new[name], non_blocking=True)

        return BucketRunner(load=load, run=self._runner(inputs))

    def _runner(self, inputs):
        forward = self.forward

        @torch.inference_mode()
        def run():
            return forward(*inputs)

        if self.cell.mode != "cudagraph":
            return run
        return self._capture(run)

    def _capture(self, run):
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

        def replay():
            graph.replay()
            return static_out

        return replay

    def synchronize(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def info(self):
        return {"precision_policy": "weights cast (model.to(dtype)), no autocast",
                "mode": self.cell.mode, "device": self.device,
                "compile": {"dynamic": False, "backend": "inductor"} if self.cell.mode == "compile" else None}

    def close(self):
        self._captured = []
        self.model = self.forward = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


@register_backend
class TorchCPU(Backend):
    name = "torch-cpu"
    modes = ("eager", "compile")

    def prepare_impl(self, model, cell, context):
        return TorchSession(model, cell, "cpu")


@register_backend
class TorchCUDA(Backend):
    name = "torch-cuda"
    modes = ("eager", "compile", "cudagraph")
    device = "cuda:0"

    def availability(self, context=None):
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
        return True, ""

    def prepare_impl(self, model, cell, context):
        return TorchSession(model, cell, self.device)
