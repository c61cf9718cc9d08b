"""`triton-grpc` and `triton-http`: cells served by a real Triton Inference Server.

The cell's mode is the serving scenario:
- `latency`: the timed closure is one blocking request of the cell's batch; the record adds the server's own
  split of those requests (statistics extension) and the achieved batch size;
- `sweep`: the same, then a closed-loop concurrency sweep (matrix `serving.sweep`);
- `poisson`: the same, then open-loop Poisson arrivals at the target rates (`serving.poisson`);
- `crosscheck`: the sweep, and NVIDIA's perf_analyzer at the same levels beside it (or why it cannot run).
Outputs go through the same oracle as every cell: fetch → (scores, items) top-k.
"""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from genrec_bench.backends.base import Backend, Session
from genrec_bench.backends.registry import register_backend
from genrec_bench.backends.triton_server import settings
from genrec_bench.backends.triton_server.repository import model_set, widths
from genrec_bench.matrices.errors import BackendError, BackendUnavailable
from genrec_bench.matrices.serving import serving_spec

MODES = ("latency", "sweep", "poisson", "crosscheck")
CLIENT_DEPS = {"grpc": ("tritonclient", "grpc"), "http": ("tritonclient", "geventhttpclient", "aiohttp")}


class TritonSession(Session):
    timer = "host_clock"  # a blocking request returns when the server has answered

    def __init__(self, backend: TritonBackend, cell, spec, server, models, gpu: bool):
        from genrec_bench.backends.triton_server.client import SyncClient

        self.name, self.protocol, self.cell, self.spec = backend.name, backend.protocol, cell, spec
        self.server, self.models, self.gpu = server, models, gpu
        self.device = "cuda:0" if gpu else "cpu"
        url = server.endpoints.grpc if self.protocol == "grpc" else server.endpoints.http
        self.url = url
        self.client = SyncClient(self.protocol, url)
        self.k = widths(backend.cfg, cell.phase, spec.preselect)[0]
        self.workdir = Path(tempfile.mkdtemp(prefix="genrec-triton-cell-"))
        self.arrays: dict[str, np.ndarray] | None = None
        self._before = None

    def runner(self, drawn):
        from genrec_bench.backends.triton_server import metrics
        from genrec_bench.backends.triton_server.client import request_arrays

        self.arrays = request_arrays(self.spec.target, drawn, self.cell.phase)
        np.savez(self.workdir / "request.npz", **self.arrays)
        call = self.client.call(self.models.entry, self.arrays, self.models.outputs)
        self._before = metrics.model_stats(self.server.endpoints.http, self._stats_models())
        name, model, server = self.name, self.models.entry, self.server

        def run():
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - one line naming the cell's server and model
                dead = "" if server.alive() else f" (the server died; log tail:\n{server.log_tail(12)})"
                raise BackendError(f"{name} | request to {model} failed: {type(exc).__name__}: {exc}{dead}") \
                    from None

        return run

    def fetch(self, result):
        scores, items = result
        # The genrec target returns preselect × k candidates, best first; the cell's answer is the top k.
        return (torch.from_numpy(np.array(scores[:, : self.k])).float(),
                torch.from_numpy(np.array(items[:, : self.k])).long())

    def _stats_models(self) -> tuple[str, ...]:
        return tuple(self.models.load_order)

    def info(self):
        from genrec_bench.backends.triton_server.client import describe

        s = self.spec
        return {"protocol": self.protocol, "client": describe(self.protocol), "server": self.server.describe(),
                "target": s.target, "entry_model": self.models.entry, "models": list(self.models.load_order),
                "genrec_device": self.device,
                "deployment": {"max_batch_size": s.max_batch_size, "preferred_batch_sizes": list(s.preferred_batch_sizes),
                               "max_queue_delay_us": s.max_queue_delay_us, "instances": s.instances,
                               "instance_kind": "gpu" if self.gpu else "cpu", "preselect": s.preselect}}

    def extra_records(self, matrix):
        from genrec_bench.backends.triton_server import metrics, scenarios

        spec = serving_spec(matrix) if matrix is not None else self.spec
        after = metrics.model_stats(self.server.endpoints.http, self._stats_models())
        record = {"scenario": self.cell.mode, "protocol": self.protocol, "target": spec.target,
                  "entry_model": self.models.entry, "users_per_request": self.cell.batch,
                  "per_request": {"server": metrics.stats_delta(self._before, after)}}
        if self.cell.mode == "latency":
            return {"serving": record}
        target = scenarios.Target(
            name=self.name, protocol=self.protocol, url=self.url, http=self.server.endpoints.http,
            metrics_url=self.server.endpoints.metrics, model=self.models.entry, outputs=self.models.outputs,
            inputs_path=str(self.workdir / "request.npz"), batch=self.cell.batch,
            stats_models=self._stats_models(), batching_model=self.models.prefix + "_genrec", server=self.server)
        if self.cell.mode in ("sweep", "crosscheck"):
            record["sweep"] = scenarios.concurrency_sweep(target, spec.sweep)
        if self.cell.mode == "poisson":
            record["poisson"] = scenarios.poisson_load(target, spec.poisson)
        if self.cell.mode == "crosscheck":
            record["perf_analyzer"] = self._perf_analyzer(spec)
        return {"serving": record}

    def _perf_analyzer(self, spec) -> dict:
        from genrec_bench.backends.triton_server import perf_analyzer

        binary, why = perf_analyzer.locate()
        if binary is None:
            return {"available": False, "reason": why}
        # perf_analyzer sends batch-1 rows of the same data (-b batches them), so it needs the per-user rows.
        return perf_analyzer.cross_check(binary, protocol=self.protocol, url=self.url, model=self.models.entry,
                                         batch=self.cell.batch, arrays=self.arrays, levels=spec.sweep.concurrency,
                                         workdir=self.workdir, spec=spec.perf_analyzer)

    def close(self):
        self.client.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class TritonBackend(Backend):
    """Shared by both protocols; the server is the process's shared one (server.shared_server)."""

    protocol: str
    modes = MODES

    def __init__(self):
        gpu = torch.cuda.is_available() and settings.serving().instance_kind != "cpu"
        self.device = "cuda:0" if gpu else "cpu"

    def availability(self):
        from genrec_bench.backends.triton_server import server

        missing = [m for m in CLIENT_DEPS[self.protocol] if importlib.util.find_spec(m) is None]
        if missing:
            return False, (f"{', '.join(missing)} not installed; pip install 'tritonclient[grpc,http]' "
                           f"(the `serving` extra)")
        if settings.URL_ENV in __import__("os").environ:
            return True, ""
        try:
            server.server_binary()
            server.backend_directory()
            from genrec_bench.backends.triton_server.stub_env import libpython_dir

            libpython_dir()
        except (BackendUnavailable, BackendError) as err:
            return False, getattr(err, "reason", str(err))
        return True, ""

    def prepare_impl(self, model, cell):
        from genrec_bench.backends.triton_server.server import shared_server
        from genrec_bench.models import preset

        spec = settings.serving()
        if cell.batch > spec.max_batch_size:
            raise BackendError(f"{self.name} | batch {cell.batch} is larger than serving.max_batch_size="
                               f"{spec.max_batch_size}; raise it or drop the batch")
        if spec.instance_kind == "gpu" and not torch.cuda.is_available():
            raise BackendUnavailable(self.name, "serving.instance_kind is gpu but torch sees no CUDA device")
        gpu = spec.instance_kind == "gpu" or (spec.instance_kind == "auto" and torch.cuda.is_available())
        self.cfg = preset(cell.model)
        models = model_set(self.cfg, cell.phase, cell.precision, cell.kernel, spec, gpu)
        server = shared_server(gpu=gpu, startup_timeout_s=spec.startup_timeout_s)
        if not server.remote and not set(models.load_order) <= server.loaded:
            models.write(server.repository)
        for name in models.load_order:
            if name not in server.loaded:
                server.load(name)
        return TritonSession(self, cell, spec, server, models, gpu)


@register_backend
class TritonGrpc(TritonBackend):
    name = "triton-grpc"
    protocol = "grpc"


@register_backend
class TritonHttp(TritonBackend):
    name = "triton-http"
    protocol = "http"
