"""The embedded Triton Inference Server: the `tritonserver` binary bundled in the `nvidia-pytriton` wheel.

One server per process, shared by every Triton cell: it starts in explicit model-control mode on an empty
repository, and each cell writes its models into that repository and loads them, so a session pays the start
once. It binds 127.0.0.1 on free ports, is waited for with a timeout, and is stopped with SIGTERM and a wait
at session end, at interpreter exit, on SIGTERM to this process, and — through PR_SET_PDEATHSIG — even when
this process dies without cleaning up. A server that died is noticed and the next cell starts a fresh one.

`--triton-url` (or `GENREC_TRITON_URL`) points at an existing server instead; then nothing is started. Control
requests (readiness, loading, statistics, metadata) go through tritonclient (control.py).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from genrec_bench.backends.processes import die_with_parent
from genrec_bench.backends.triton_server.control import ServerControl
from genrec_bench.backends.triton_server.stub_env import (
    cache_dir,
    cache_lock,
    ensure_stub_env,
    libpython_dir,
    python_tag,
)
from genrec_bench.matrices.errors import BackendError, BackendUnavailable

BINARY_ENV = "GENREC_TRITONSERVER"
URL_ENV = "GENREC_TRITON_URL"
SHM_PREFIX = "triton_python_backend_shm_region"
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class Endpoints:
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int

    @property
    def http(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"


def parse_url(text: str) -> Endpoints:
    """`HOST` (Triton's default ports 8000/8001/8002), `HOST:HTTP_PORT` (gRPC and metrics on the next two), or
    `http=HOST:PORT,grpc=HOST:PORT,metrics=HOST:PORT`."""
    text = text.strip().removeprefix("http://").removeprefix("grpc://").rstrip("/")
    if "=" in text:
        parts = dict(item.split("=", 1) for item in text.split(",") if item)
        missing = {"http", "grpc", "metrics"} - set(parts)
        if missing or set(parts) - {"http", "grpc", "metrics"}:
            raise BackendError(
                f"triton | --triton-url {text!r} must name http=, grpc= and metrics= "
                f"(missing: {', '.join(sorted(missing)) or 'none'})"
            )
        hosts = {p.rsplit(":", 1)[0] for p in parts.values()}
        if len(hosts) != 1:
            raise BackendError(f"triton | --triton-url {text!r} names several hosts; use one")
        port = {k: _port(v.rsplit(":", 1)[-1], text) for k, v in parts.items()}
        return Endpoints(hosts.pop(), port["http"], port["grpc"], port["metrics"])
    host, _, port = text.partition(":")
    if not host:
        raise BackendError(f"triton | --triton-url {text!r} has no host; e.g. 127.0.0.1:8000")
    http = _port(port, text) if port else 8000
    return Endpoints(host, http, http + 1, http + 2)


def _port(text: str, url: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BackendError(f"triton | --triton-url {url!r}: {text!r} is not a port number")
    return int(text)


# ----------------------------------------------------------------------------------------------- the bundle


def bundle_dir() -> Path:
    """`pytriton/tritonserver` of the installed nvidia-pytriton wheel (found without importing pytriton)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "triton",
            "the nvidia-pytriton wheel (which bundles tritonserver) is not "
            "installed; pip install --no-deps nvidia-pytriton==0.7.0",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def server_binary() -> Path:
    override = os.environ.get(BINARY_ENV)
    binary = Path(override) if override else bundle_dir() / "bin" / "tritonserver"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise BackendUnavailable(
            "triton",
            f"no executable tritonserver at {binary}" + (f" (from ${BINARY_ENV})" if override else ""),
        )
    return binary


def backend_directory() -> Path:
    """A backend folder of our own: `python/` holding the backend library, its utils and the stub built for
    this interpreter's version (the wheel ships one stub per Python version beside the backend)."""
    bundle = bundle_dir()
    stub = bundle / "python_backend_stubs" / python_tag() / "triton_python_backend_stub"
    if not stub.is_file():
        raise BackendUnavailable(
            "triton",
            f"the bundled server has no Python-backend stub for Python {python_tag()} (looked at {stub})",
        )
    root = cache_dir() / "triton" / f"backends-py{python_tag()}"
    python = root / "python"
    python.mkdir(parents=True, exist_ok=True)
    with cache_lock(root.name):
        _link_backend(python, bundle, stub)
    return root


def _link_backend(python: Path, bundle: Path, stub: Path) -> None:
    for name, src in (
        ("libtriton_python.so", bundle / "backends" / "python" / "libtriton_python.so"),
        ("triton_python_backend_utils.py", bundle / "backends" / "python" / "triton_python_backend_utils.py"),
        ("triton_python_backend_stub", stub),
    ):
        link = python / name
        if link.is_symlink() and os.readlink(link) == str(src):
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(src)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python_env_dirs() -> set[str]:
    return {str(p) for p in Path(tempfile.gettempdir()).glob("python_env_*")}


def shm_regions() -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if name.startswith(SHM_PREFIX)}
    except FileNotFoundError:
        return set()


# ----------------------------------------------------------------------------------------------- servers


class EmbeddedServer:
    """A tritonserver process of our own over a temporary model repository."""

    remote = False

    def __init__(self, *, gpu: bool, startup_timeout_s: float = 90.0, exit_timeout_s: int = 15):
        self.gpu, self.startup_timeout_s, self.exit_timeout_s = gpu, startup_timeout_s, exit_timeout_s
        self.workdir = Path(tempfile.mkdtemp(prefix="genrec-triton-"))
        self.repository = self.workdir / "models"
        self.repository.mkdir()
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen | None = None
        self.endpoints: Endpoints | None = None
        self.control: ServerControl | None = None
        self.loaded: set[str] = set()
        self._stubs: dict[int, list[str]] = {}  # stub pid → its command line, to reap them after a crash
        self._regions: set[str] = set()  # their /dev/shm regions
        self._env_dirs: set[str] = set()  # the Python backend's /tmp/python_env_* folder
        self._env_dirs_before: set[str] = set()

    # -- lifecycle
    def start(self) -> EmbeddedServer:
        """Start and wait until ready; on any failure nothing is left behind (process, folders)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> EmbeddedServer:
        from rich.console import Console

        binary, backends = server_binary(), backend_directory()
        # Making the stub's environment (first run) and the server's start take seconds to a minute: say so.
        with Console(file=sys.__stderr__).status("genrec-bench: starting the embedded Triton server…"):
            env_root = ensure_stub_env()
            self._spawn(binary, backends, env_root)
            self._wait_ready()
        return self

    def _spawn(self, binary: Path, backends: Path, env_root: Path) -> None:
        bundle_libs = bundle_dir().parent.parent / "nvidia_pytriton.libs"
        env = dict(os.environ)
        env["PATH"] = f"{env_root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(bundle_libs), str(libpython_dir()), env.get("LD_LIBRARY_PATH")) if p
        )
        env.pop("PYTHONPATH", None)  # the stub ignores it; a stale one only confuses a reader of the env
        self.endpoints = Endpoints("127.0.0.1", free_port(), free_port(), free_port())
        self.control = ServerControl(self.endpoints.http)
        cmd = [
            str(binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            "--model-control-mode=explicit",
            "--disable-auto-complete-config",
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--log-verbose=0",
            f"--http-address={self.endpoints.host}",
            f"--http-port={self.endpoints.http_port}",
            f"--grpc-address={self.endpoints.host}",
            f"--grpc-port={self.endpoints.grpc_port}",
            f"--metrics-address={self.endpoints.host}",
            f"--metrics-port={self.endpoints.metrics_port}",
            "--allow-metrics=true",
            "--metrics-interval-ms=500",
        ]
        if not self.gpu:
            cmd += [
                "--allow-gpu-metrics=false",
                "--pinned-memory-pool-byte-size=0",
                "--cuda-memory-pool-byte-size=0:0",
            ]
        self._env_dirs_before = _python_env_dirs()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=die_with_parent,
            )  # noqa: PLW1509 - see processes.py
        _track(self)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise BackendError(
                    f"triton | tritonserver exited with code {code} while starting; "
                    f"log tail:\n{self.log_tail()}"
                )
            if self.control.ready():
                return
            time.sleep(0.1)
        raise BackendError(
            f"triton | tritonserver was not ready within {self.startup_timeout_s:.0f} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait (the server unloads its models, ends its stubs and frees /dev/shm); SIGKILL only
        past the exit timeout, and then what it leaked (stubs, /dev/shm regions) is removed."""
        proc, self.proc = self.proc, None
        if self.control is not None:
            # First: an open keep-alive connection holds the server's HTTP shutdown until its exit timeout.
            self.control.close()
            self.control = None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.exit_timeout_s + 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.returncode != 0:
            self._reap_after_crash()
        _untrack(self)
        self.loaded.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _reap_after_crash(self) -> None:
        """A server that did not exit cleanly (killed, crashed) leaves its Python-backend stubs behind,
        orphaned and deaf to SIGTERM, each holding a /dev/shm region. End the stubs we saw it start — only
        processes whose command line is still exactly the one recorded, so never another server's — with
        SIGTERM, then SIGKILL, and unlink the regions named on their command lines."""
        import psutil

        stubs = []
        for pid, cmdline in self._stubs.items():
            try:
                stub = psutil.Process(pid)
                if stub.cmdline() == cmdline:
                    stub.terminate()
                    stubs.append(stub)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(stubs, timeout=5)
        for stub in alive:
            try:
                stub.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for name in self._regions:
            try:
                os.unlink(f"/dev/shm/{name}")
            except FileNotFoundError:
                pass
        for env_dir in self._env_dirs:
            try:
                os.rmdir(env_dir)  # the Python backend's (empty) env folder; rmdir never removes contents
            except OSError:
                pass
        self._env_dirs.clear()
        self._stubs.clear()
        self._regions.clear()

    def _record_stubs(self) -> None:
        import psutil

        if not self._stubs:  # the first load brings up the Python backend, which makes its env folder
            self._env_dirs = _python_env_dirs() - self._env_dirs_before

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for child in children:
            try:
                cmdline = child.cmdline()
            except psutil.NoSuchProcess:
                continue
            regions = [arg for arg in cmdline if arg.startswith(SHM_PREFIX)]
            if regions:
                self._stubs[child.pid] = cmdline
                self._regions.update(regions)

    # -- models
    def load(self, name: str) -> None:
        """Load (or reload) `name` from the repository; a failure carries the server's reason and log tail."""
        self._require_alive(f"loading {name}")
        try:
            self.control.load(name)
        except BackendError as err:
            self._require_alive(f"loading {name}")
            raise BackendError(f"{err}; server log tail:\n{self.log_tail()}") from None
        self.loaded.add(name)
        self._record_stubs()

    def _require_alive(self, what: str) -> None:
        if not self.alive():
            code = None if self.proc is None else self.proc.returncode
            raise BackendError(
                f"triton | the server is not running ({what}; exit code {code}); log tail:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> dict:
        return {
            "kind": "embedded",
            "binary": str(server_binary()),
            "pid": self.proc.pid if self.proc else None,
            "workdir": str(self.workdir),
            "version": self.control.version() if self.control else None,
            "endpoints": {
                "http": self.endpoints.http,
                "grpc": self.endpoints.grpc,
                "metrics": self.endpoints.metrics,
            },
        }


def url_problem(url: str) -> str | None:
    """Why the server at `url` (`--triton-url`) cannot serve cells, in one clause, or None when it answers."""
    try:
        endpoints = parse_url(url)
    except BackendError as err:
        return str(err).removeprefix("triton | ")
    control = ServerControl(endpoints.http, timeout_s=5.0)
    try:
        if not control.live():
            return (
                f"nothing answers at {endpoints.http} (its HTTP endpoint); start the server there or correct "
                f"the URL"
            )
    finally:
        control.close()
    return None


class RemoteServer:
    """An existing server (`--triton-url`): models must already be in its repository; nothing is started."""

    remote = True
    repository = None

    def __init__(self, endpoints: Endpoints, url: str):
        self.endpoints, self.url = endpoints, url
        self.control = ServerControl(endpoints.http)
        self.loaded: set[str] = set()
        if not self.control.live():
            raise BackendError(
                f"triton | nothing answers at {endpoints.http} (--triton-url {url}): start the "
                f"server there or correct the URL"
            )

    def alive(self) -> bool:
        return self.control.live()

    def load(self, name: str) -> None:
        if not self.control.model_ready(name):
            try:
                self.control.load(name)
            except BackendError as err:
                raise BackendError(
                    f"{err} (server at {self.endpoints.http}); its repository needs the model: "
                    f"write one with `python -m genrec_bench.backends.triton_server.repository`"
                ) from None
        self.loaded.add(name)

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""
        self.control.close()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return f"(the server at {self.endpoints.http} is not ours; see its own log)"

    def describe(self) -> dict:
        return {
            "kind": "remote",
            "version": self.control.version(),
            "endpoints": {
                "http": self.endpoints.http,
                "grpc": self.endpoints.grpc,
                "metrics": self.endpoints.metrics,
            },
        }


# ----------------------------------------------------------------------------------------------- sharing

_lock = threading.Lock()
_running: list[EmbeddedServer] = []
_shared: EmbeddedServer | RemoteServer | None = None
_handlers_installed = False


def shared_server(
    *, gpu: bool, url: str | None = None, startup_timeout_s: float = 90.0
) -> EmbeddedServer | RemoteServer:
    """The process's server: the remote one at `url` when given, else the embedded one, started (again, if the
    last one died) on first use."""
    global _shared
    with _lock:
        if url:
            if not (isinstance(_shared, RemoteServer) and _shared.url == url):
                _shared = RemoteServer(parse_url(url), url)
            return _shared
        if isinstance(_shared, EmbeddedServer) and _shared.alive() and _shared.gpu == gpu:
            return _shared
        if _shared is not None:
            _shared.stop()
        _shared = None
        _shared = EmbeddedServer(gpu=gpu, startup_timeout_s=startup_timeout_s).start()
        return _shared


def shutdown_all() -> None:
    """Stop every server this process started (session end, exit, SIGTERM)."""
    global _shared
    for server in list(_running):  # stop() removes the server from _running
        server.stop()
    _shared = None


def _track(server: EmbeddedServer) -> None:
    _install_handlers()
    _running.append(server)


def _untrack(server: EmbeddedServer) -> None:
    if server in _running:
        _running.remove(server)


def _install_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(shutdown_all)
    # SIGTERM's default action skips atexit; stop the servers first, then die of it as before. Only when no
    # one else handles SIGTERM (the pytest plugin does: it turns SIGTERM into an interrupt that unwinds) and
    # only the main thread may install handlers.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):

        def on_term(signum, frame):
            shutdown_all()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_term)
