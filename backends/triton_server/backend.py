"""`triton-grpc` and `triton-http`: cells served by a real Triton Inference Server.

The cell's mode is the serving scenario the bench runs after the per-request timing (bench/serving/):
`latency` (one blocking request of the cell's batch is the timed closure), `sweep` (plus a closed-loop
concurrency sweep), `poisson` (plus open-loop Poisson arrivals), `crosscheck` (the sweep and NVIDIA's
perf_analyzer at the same levels). This module serves the model and describes the served target; outputs go
through the same oracle as every cell: fetch → (scores, items) top-k.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from genrec_bench.backends.base import Backend, RunContext, ServedTarget, Session
from genrec_bench.backends.registry import register_backend
from genrec_bench.backends.triton_server.repository import model_set, widths
from genrec_bench.matrices.errors import BackendError, BackendUnavailable
from genrec_bench.matrices.serving import ServingSpec, serving_spec

MODES = ("latency", "sweep", "poisson", "crosscheck")
# What each protocol's cells import: its blocking and asyncio clients, and the HTTP client the server's
# control plane uses (control.py) whatever the protocol. tritonclient installs without the dependencies of a
# protocol (its extras) and says so only when that module is imported, so availability imports them.
CLIENT_MODULES = {
    "grpc": ("tritonclient.grpc", "tritonclient.grpc.aio", "tritonclient.http"),
    "http": ("tritonclient.http", "tritonclient.http.aio"),
}
# The distribution behind a module a client module may miss, for the line that says what to install.
_DISTRIBUTIONS = {"rapidjson": "python-rapidjson", "grpc": "grpcio", "google": "protobuf"}
LOAD_PROCESS = Path(__file__).with_name("load_process.py")


def missing_client(protocol: str) -> str | None:
    """What stops this protocol's client modules from importing, as the start of one line; None if nothing."""
    for module in CLIENT_MODULES[protocol]:
        try:
            importlib.import_module(module)
        except (ImportError, RuntimeError) as exc:
            # tritonclient turns a missing dependency into a RuntimeError ("does not include grpc support")
            # raised from the ModuleNotFoundError that names it.
            cause = exc if isinstance(exc, ImportError) else (exc.__cause__ or exc.__context__)
            name = getattr(cause, "name", None)
            if not name:
                return f"{module} cannot be imported: {type(exc).__name__}: {exc}"
            top = name.split(".")[0]
            dist = _DISTRIBUTIONS.get(top, top)
            return f"{module} cannot be imported: module {name!r} is missing (the {dist} package)"
    return None


class TritonSession(Session):
    timer = "host_clock"  # a blocking request returns when the server has answered

    def __init__(self, backend: TritonBackend, cell, spec: ServingSpec, server, models, gpu: bool, cfg):
        from genrec_bench.backends.triton_server.client import SyncClient

        self.name, self.protocol, self.cell, self.spec = backend.name, backend.protocol, cell, spec
        self.server, self.models, self.gpu = server, models, gpu
        self.device = "cuda:0" if gpu else "cpu"
        self.url = server.endpoints.grpc if self.protocol == "grpc" else server.endpoints.http
        self.client = SyncClient(self.protocol, self.url)
        self.k = widths(cfg, cell.phase, spec.preselect)[0]
        self.workdir = Path(tempfile.mkdtemp(prefix="genrec-triton-cell-"))
        self.arrays: dict[str, np.ndarray] | None = None
        # The ensemble takes raw histories, where id 0 is what marks padding; genrec takes explicit lengths.
        self.pads_with_lengths = spec.target == "genrec"

    def runner(self, drawn):
        from genrec_bench.backends.triton_server.client import request_arrays

        self.arrays = request_arrays(self.spec.target, drawn, self.cell.phase)
        np.savez(self.workdir / "request.npz", **self.arrays)
        call = self.client.call(self.models.entry, self.arrays, self.models.outputs)
        name, model, server = self.name, self.models.entry, self.server

        def run():
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - one line naming the cell's server and model
                dead = "" if server.alive() else f" (the server died; log tail:\n{server.log_tail(12)})"
                raise BackendError(
                    f"{name} | request to {model} failed: {type(exc).__name__}: {exc}{dead}"
                ) from None

        return run

    def fetch(self, result):
        scores, items = result
        # The genrec target returns preselect × k candidates, best first; the cell's answer is the top k.
        return (
            torch.from_numpy(np.array(scores[:, : self.k])).float(),
            torch.from_numpy(np.array(items[:, : self.k])).long(),
        )

    def provenance(self):
        """The served genrec model's own account (it answers FP32 over the wire whatever it computes in), read
        from the file it writes at load; a server that is not ours cannot be asked."""
        if self.server.remote:
            return {
                "output_dtype": None,
                "kernels": None,
                "served_model": "unverified: the server is not ours, so its model's own account is "
                "not readable",
            }
        path = self.server.repository / f"{self.models.prefix}_genrec" / "1" / "provenance.json"
        info = json.loads(path.read_text())
        return {
            "output_dtype": info["output_dtype"],
            "kernels": info["kernels"],
            "output_dtype_source": "the served genrec model's raw scores, before the FP32 the wire carries",
            "kernels_source": "the served genrec model's dispatch while it loaded",
        }

    def info(self):
        from genrec_bench.backends.triton_server.client import describe

        s = self.spec
        return {
            "protocol": self.protocol,
            "client": describe(self.protocol),
            "server": self.server.describe(),
            "target": s.target,
            "entry_model": self.models.entry,
            "models": list(self.models.load_order),
            "genrec_device": self.device,
            "deployment": {
                "max_batch_size": s.max_batch_size,
                "preferred_batch_sizes": list(s.preferred_batch_sizes),
                "max_queue_delay_us": s.max_queue_delay_us,
                "instances": s.instances,
                "instance_kind": "gpu" if self.gpu else "cpu",
                "preselect": s.preselect,
            },
        }

    def served_target(self) -> ServedTarget:
        from genrec_bench.backends.triton_server import metrics
        from genrec_bench.backends.triton_server.client import request_arrays

        control, stats_models = self.server.control, tuple(self.models.load_order)
        metrics_url, batching_model = self.server.endpoints.metrics, self.models.prefix + "_genrec"

        def snapshot() -> dict:
            return {
                "stats": metrics.model_stats(control, stats_models),
                "prometheus": metrics.scrape(metrics_url),
            }

        def window(before: dict, after: dict) -> dict:
            return {
                "server": metrics.stats_delta(before["stats"], after["stats"]),
                "batch": metrics.achieved_batch(before["prometheus"], after["prometheus"], batching_model),
            }

        return ServedTarget(
            name=self.name,
            protocol=self.protocol,
            url=self.url,
            model=self.models.entry,
            outputs=self.models.outputs,
            inputs_path=str(self.workdir / "request.npz"),
            batch=self.cell.batch,
            load_generator=str(LOAD_PROCESS),
            snapshot=snapshot,
            window=window,
            alive=self.server.alive,
            log_tail=self.server.log_tail,
            cross_check=self._perf_analyzer,
            request_arrays=lambda drawn: request_arrays(self.spec.target, drawn, self.cell.phase),
        )

    def _perf_analyzer(self, levels, spec) -> dict:
        from genrec_bench.backends.triton_server import perf_analyzer

        binary, why = perf_analyzer.locate()
        if binary is None:
            return {"available": False, "reason": why}
        # perf_analyzer sends batch-1 rows of the same data (-b batches them), so it needs the per-user rows.
        return perf_analyzer.cross_check(
            binary,
            protocol=self.protocol,
            url=self.url,
            model=self.models.entry,
            batch=self.cell.batch,
            arrays=self.arrays,
            levels=levels,
            workdir=self.workdir,
            spec=spec,
        )

    def close(self):
        self.client.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def triton_url(context: RunContext | None) -> str | None:
    """The running server to use: `--triton-url` (the run's option), else $GENREC_TRITON_URL, else None."""
    from genrec_bench.backends.triton_server.server import URL_ENV

    return (context.triton_url if context is not None else None) or os.environ.get(URL_ENV) or None


class TritonBackend(Backend):
    """Shared by both protocols; the server is the process's shared one (server.shared_server)."""

    protocol: str
    modes = MODES

    def device_for(self, context=None):
        return "cuda:0" if _wants_gpu(serving_spec(context.matrix if context else None)) else "cpu"

    def availability(self, context=None):
        from genrec_bench.backends.triton_server import server

        missing = missing_client(self.protocol)
        if missing:
            return False, f"{missing}; pip install 'tritonclient[grpc,http]' (the `serving` extra)"
        if triton_url(context):
            return True, ""
        try:
            server.server_binary()
            server.backend_directory()
            from genrec_bench.backends.triton_server.stub_env import libpython_dir

            libpython_dir()
        except (BackendUnavailable, BackendError) as err:
            return False, getattr(err, "reason", str(err))
        return True, ""

    def prepare_impl(self, model, cell, context):
        from genrec_bench.backends.triton_server.server import shared_server

        spec = serving_spec(context.matrix)
        if cell.batch > spec.max_batch_size:
            raise BackendError(
                f"{self.name} | batch {cell.batch} is larger than serving.max_batch_size="
                f"{spec.max_batch_size}; raise it or drop the batch"
            )
        if spec.instance_kind == "gpu" and not torch.cuda.is_available():
            raise BackendUnavailable(self.name, "serving.instance_kind is gpu but torch sees no CUDA device")
        gpu = _wants_gpu(spec)
        models = model_set(model.cfg, cell.phase, cell.precision, cell.kernel, spec, gpu)
        server = shared_server(gpu=gpu, url=triton_url(context), startup_timeout_s=spec.startup_timeout_s)
        if not server.remote and not set(models.load_order) <= server.loaded:
            models.write(server.repository)
        for name in models.load_order:
            if name not in server.loaded:
                server.load(name)
        return TritonSession(self, cell, spec, server, models, gpu, model.cfg)


def _wants_gpu(spec: ServingSpec) -> bool:
    return spec.instance_kind == "gpu" or (spec.instance_kind == "auto" and torch.cuda.is_available())


@register_backend
class TritonGrpc(TritonBackend):
    name = "triton-grpc"
    protocol = "grpc"


@register_backend
class TritonHttp(TritonBackend):
    name = "triton-http"
    protocol = "http"
