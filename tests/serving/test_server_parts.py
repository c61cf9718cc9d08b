"""Server pieces that need no server: --triton-url parsing, the backend folder, free ports, availability."""

import os
from pathlib import Path

import pytest

from genrec_bench.backends import get_backend
from genrec_bench.backends.triton_server import server
from genrec_bench.matrices.errors import BackendError, BackendUnavailable


@pytest.mark.parametrize(
    "text,expected",
    [
        ("10.0.0.5", ("10.0.0.5", 8000, 8001, 8002)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000, 9001, 9002)),
        ("http://127.0.0.1:9000/", ("127.0.0.1", 9000, 9001, 9002)),
        ("http=h:1,grpc=h:2,metrics=h:3", ("h", 1, 2, 3)),
    ],
)
def test_triton_url_forms(text, expected):
    e = server.parse_url(text)
    assert (e.host, e.http_port, e.grpc_port, e.metrics_port) == expected
    assert e.metrics == f"http://{e.host}:{e.metrics_port}/metrics"


@pytest.mark.parametrize(
    "text,words",
    [
        (":8000", "has no host"),
        ("h:http", "'http' is not a port number"),
        ("h:70000", "not a port number"),
        ("http=h:1,grpc=h:2", "missing: metrics"),
        ("http=a:1,grpc=b:2,metrics=a:3", "names several hosts"),
    ],
)
def test_bad_triton_urls(text, words):
    with pytest.raises(BackendError, match=words):
        server.parse_url(text)


def test_the_backend_folder_links_the_bundled_stub():
    folder = server.backend_directory() / "python"
    stub = folder / "triton_python_backend_stub"
    assert stub.is_symlink() and os.access(stub, os.X_OK)
    assert (folder / "libtriton_python.so").exists() and (folder / "triton_python_backend_utils.py").exists()
    assert server.backend_directory() / "python" == folder  # idempotent


def test_free_ports_are_distinct_and_bindable():
    ports = {server.free_port() for _ in range(5)}
    assert len(ports) >= 4 and all(1024 < p < 65536 for p in ports)


def test_a_missing_server_binary_makes_the_backend_unavailable(monkeypatch, tmp_path):
    monkeypatch.delenv(server.URL_ENV, raising=False)
    monkeypatch.setenv(server.BINARY_ENV, str(tmp_path / "no-such-tritonserver"))
    ok, why = get_backend("triton-grpc").availability()
    assert not ok and "no executable tritonserver at" in why and "GENREC_TRITONSERVER" in why
    srv = server.EmbeddedServer(gpu=False)
    with pytest.raises(BackendUnavailable, match="no executable tritonserver"):
        srv.start()
    assert not srv.workdir.exists(), "a server that never started leaves no folder"


def test_a_remote_url_needs_no_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv(server.URL_ENV, "127.0.0.1:1")
    monkeypatch.setenv(server.BINARY_ENV, str(tmp_path / "no-such-tritonserver"))
    assert get_backend("triton-grpc").availability() == (True, "")


def test_shutdown_all_stops_every_server_it_started(monkeypatch):
    """stop() takes a server off the list shutdown_all walks: every one is stopped all the same."""
    from genrec_bench.backends.triton_server import server

    stopped = []

    class Fake:
        def stop(self):
            stopped.append(self)
            server._untrack(self)

    fakes = [Fake(), Fake(), Fake()]
    monkeypatch.setattr(server, "_running", list(fakes))
    server.shutdown_all()
    assert stopped == fakes and server._running == []


def test_stubs_left_by_a_crashed_server_are_killed_past_sigterm_and_only_ours(tmp_path):
    """A server that died uncleanly leaves its Python-backend stubs orphaned; one may ignore SIGTERM. The
    reaper escalates to SIGKILL for the stubs it recorded (command line unchanged) and never touches another
    process that merely reuses a recorded pid, and unlinks the stubs' /dev/shm regions."""
    import subprocess
    import sys
    import time

    import psutil

    deaf = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); "
        "time.sleep(300)"
    )
    region = f"{server.SHM_PREFIX}_test_{os.getpid()}"
    ours = subprocess.Popen([sys.executable, "-c", deaf, region], stdout=subprocess.PIPE)
    other = subprocess.Popen([sys.executable, "-c", deaf, "someone-elses"], stdout=subprocess.PIPE)
    try:
        ours.stdout.readline(), other.stdout.readline()  # both have their SIGTERM handlers in place
        (shm := Path("/dev/shm") / region).write_bytes(b"\0")
        srv = server.EmbeddedServer(gpu=False)
        srv._stubs = {
            ours.pid: psutil.Process(ours.pid).cmdline(),
            other.pid: ["a", "command", "line", "changed"],
        }
        srv._regions = {region}
        start = time.monotonic()
        srv._reap_after_crash()
        # The reaper waits on (and so reaps) the process itself: it is gone, not a zombie, soon after
        # SIGTERM's grace period, which it had to outlast.
        assert not psutil.pid_exists(ours.pid), "a stub deaf to SIGTERM is killed"
        assert 4 < time.monotonic() - start < 15
        assert other.poll() is None, "a process whose command line is not the recorded one is not ours"
        assert not shm.exists()
        srv.stop()
    finally:
        for proc in (ours, other):
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _without(monkeypatch, module: str) -> None:
    """`module` unimportable, and every tritonclient module imported afresh (restored after the test)."""
    import sys

    for name in [n for n in sys.modules if n == "tritonclient" or n.startswith("tritonclient.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize(
    "protocol,module,words",
    [
        # tritonclient installed without its grpc extra's python-rapidjson: it raises its own RuntimeError
        (
            "grpc",
            "rapidjson",
            "tritonclient.grpc cannot be imported: module 'rapidjson' is missing (the "
            "python-rapidjson package)",
        ),
        # the server's control plane is HTTP for gRPC cells too
        ("grpc", "geventhttpclient", "tritonclient.http cannot be imported: module 'geventhttpclient'"),
        ("http", "aiohttp", "tritonclient.http.aio cannot be imported: module 'aiohttp'"),
        ("http", "tritonclient", "tritonclient.http cannot be imported: module 'tritonclient"),
        ("http", "tritonclient", "is missing (the tritonclient package)"),
    ],
)
def test_a_client_missing_a_dependency_makes_the_backend_unavailable(monkeypatch, protocol, module, words):
    _without(monkeypatch, module)
    ok, why = get_backend(f"triton-{protocol}").availability()
    assert not ok and words in why and "pip install 'tritonclient[grpc,http]'" in why, why
