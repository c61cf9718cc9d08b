"""The embedded Triton server for real, on CPU: the bench's cells through it, a model that fails to load, and
a server killed in the middle of a sweep. After each, nothing is left: no process, no /dev/shm region, no
folder. Each run is a separate pytest process, so its session end (the plugin's teardown) is what is
tested."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
import psutil
import pytest
import torch

from genrec_bench.backends.triton_server import server
from genrec_bench.bench.record import schema
from genrec_bench.matrices.errors import BackendError

pytestmark = pytest.mark.serving
ROOT = Path(__file__).resolve().parents[2]
SERVING = """\
serving:
  max_batch_size: 8
  max_queue_delay_us: 200
  instance_kind: cpu
  sweep: {concurrency: [1, 3], warmup_s: 0.2, measure_s: 0.6, clients: 2}
  poisson: {rates: [30], duration_s: 0.6, warmup_s: 0.2}
timing: {warmup_rounds: 1, rounds: 5, min_rounds: 3, max_time_s: 0.5}
"""
KILL_PLUGIN = """\
import os, signal, threading

def pytest_configure(config):
    from genrec_bench.backends.triton_server import server
    from genrec_bench.bench.serving import scenarios
    original = scenarios.run_workers

    def run_workers(target, jobs, what, window_s):
        # Kill the server (no chance to clean up) while the sweep's clients are sending.
        threading.Timer(0.4, os.kill, (server._shared.proc.pid, signal.SIGKILL)).start()
        return original(target, jobs, what, window_s)

    scenarios.run_workers = run_workers
"""

# A server that answers every request of a cell with the first answer it ever gave (a response cache keyed on
# nothing, a stale output buffer): every call of one input set agrees with the first, so only the oracle's
# second, different input set through the same prepared session can catch it.
STALE_PLUGIN = """\
def pytest_configure(config):
    from genrec_bench.backends.triton_server import backend
    original = backend.TritonSession.runner
    first = {}

    def runner(self, drawn):
        run = original(self, drawn)

        def stale():
            return first.setdefault(self.cell.id, run())

        return stale

    backend.TritonSession.runner = runner
"""


def leftovers(before_shm: set, records: list) -> list[str]:
    found = [f"/dev/shm/{r}" for r in server.shm_regions() - before_shm]
    for record in records:
        srv = record["backend"]["server"]
        if psutil.pid_exists(srv["pid"]) and "tritonserver" in " ".join(psutil.Process(srv["pid"]).cmdline()):
            found.append(f"tritonserver pid {srv['pid']}")
        if Path(srv["workdir"]).exists():
            found.append(srv["workdir"])
    found += [str(p) for p in Path("/tmp").glob("python_env_*")]
    found += [f"Python-backend stub pid {pid}" for pid in stubs(before_shm)]
    return found


def stubs(before_shm: set) -> list[int]:
    """Live Python-backend stubs of a server started since `before_shm` was taken: each names its own /dev/shm
    region on its command line. After a server's kill -9 they are orphans that ignore SIGTERM."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or not any(
            "triton_python_backend_stub" in a for a in cmdline
        ):
            continue
        if any(a.startswith(server.SHM_PREFIX) and a not in before_shm for a in cmdline):
            found.append(proc.pid)
    return found


@pytest.fixture
def run_bench(bench_subprocess):
    """`run_bench(tmp_path, matrix_text, *pytest_args, env=)` → (process, records by cell id, seconds)."""

    def run(tmp_path, matrix_text, *extra, env=None):
        matrix, out = tmp_path / "m.yaml", tmp_path / "out.json"
        matrix.write_text(matrix_text)
        start = time.monotonic()
        proc = bench_subprocess(matrix, out, *extra, env=env, timeout=400)
        doc = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
        records = {
            b["extra_info"]["cell"]["id"]: b["extra_info"] for b in doc["benchmarks"] if b["extra_info"]
        }
        return proc, records, time.monotonic() - start

    return run


def test_cells_through_the_embedded_server(tmp_path, run_bench):
    shm = server.shm_regions()
    matrix = (
        textwrap.dedent("""\
        name: serving-e2e
        axes: {model: [tiny], backend: [triton-grpc], mode: [latency, sweep, poisson], precision: [fp32],
               batch: [1], seq_len: [16], phase: [prefill]}
        include:
          - {backend: triton-http, mode: latency, batch: 3, phase: rank, reason: "HTTP, the rank phase"}
        """)
        + SERVING
    )
    proc, records, _ = run_bench(tmp_path, matrix)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert set(records) == {
        "tiny-triton-grpc-latency-fp32-b1-s16-prefill",
        "tiny-triton-grpc-sweep-fp32-b1-s16-prefill",
        "tiny-triton-grpc-poisson-fp32-b1-s16-prefill",
        "tiny-triton-http-latency-fp32-b3-s16-rank",
    }
    pids = {r["backend"]["server"]["pid"] for r in records.values()}
    assert len(pids) == 1, "one server serves the whole session"
    for record in records.values():
        jsonschema.validate(record, schema())
        assert record["numerics"]["passed"] is True and record["timer"]["method"] == "host_clock"
        split = record["serving"]["per_request"]["server"]
        assert set(split) == set(record["backend"]["models"])
        entry = split[record["backend"]["entry_model"]]
        assert entry["requests"] >= record["latency_ms"]["n"]
        assert entry["compute_infer_us"] > 0 and entry["queue_us"] >= 0
        assert record["backend"]["server"]["version"] == "2.51.0"
        # What ran is the served model's own account (the wire carries FP32 whatever it computes in).
        assert record["provenance"]["output_dtype"] == "float32"
        assert record["provenance"]["output_dtype_source"].startswith("the served genrec model's raw scores")
        assert any("padding not randomised" in check for check in record["numerics"]["checks"])
    sweep = records["tiny-triton-grpc-sweep-fp32-b1-s16-prefill"]["serving"]["sweep"]
    assert [lv["concurrency"] for lv in sweep["levels"]] == [1, 3]
    assert [lv["clients"] for lv in sweep["levels"]] == [1, 2]
    for level in sweep["levels"]:
        assert level["requests_per_s"] > 0 and level["latency_ms"]["p50"] <= level["latency_ms"]["p99"]
        assert level["batch"]["batch"] >= 1 and level["batch"]["nv_inference_exec_count"] > 0
        assert {"queue_us", "compute_input_us", "compute_infer_us", "compute_output_us"} <= set(
            next(iter(level["server"].values()))
        )
    (run,) = records["tiny-triton-grpc-poisson-fp32-b1-s16-prefill"]["serving"]["poisson"]["runs"]
    assert run["target_rate"] == 30 and run["offered_rate"] > 0 and run["latency_ms"]["n"] > 0
    assert leftovers(shm, records.values()) == []


def test_a_server_killed_mid_sweep_fails_that_cell_fast_and_the_matrix_goes_on(tmp_path, run_bench):
    shm = server.shm_regions()
    (tmp_path / "kill_plugin.py").write_text(KILL_PLUGIN)
    matrix = textwrap.dedent("""\
        name: serving-kill
        axes: {model: [tiny], backend: [triton-grpc], mode: [latency, sweep], precision: [fp32], batch: [1],
               seq_len: [16], phase: [prefill]}
        include:
          - {mode: latency, batch: 2, reason: "a cell after the crash: a fresh server takes over"}
        """) + SERVING.replace("measure_s: 0.6", "measure_s: 30")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    proc, records, took = run_bench(tmp_path, matrix, "-p", "kill_plugin", env=env)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert took < 60, "a dead server must end the sweep at once, not after its 30 s window"
    assert "FAILED bench/test_cells.py::test_cell[tiny-triton-grpc-sweep-fp32-b1-s16-prefill]" in proc.stdout
    assert "the server died during the concurrency sweep at concurrency 1" in proc.stdout
    assert "Traceback" not in proc.stdout
    assert records["tiny-triton-grpc-latency-fp32-b1-s16-prefill"]["numerics"]["passed"] is True
    after = records["tiny-triton-grpc-latency-fp32-b2-s16-prefill"]
    assert after["numerics"]["passed"] is True
    assert (
        after["backend"]["server"]["pid"]
        != records["tiny-triton-grpc-latency-fp32-b1-s16-prefill"]["backend"]["server"]["pid"]
    )
    assert leftovers(shm, records.values()) == []


def test_a_served_model_that_returns_a_stale_answer_fails_on_the_second_input_set(tmp_path, run_bench):
    shm = server.shm_regions()
    (tmp_path / "stale_plugin.py").write_text(STALE_PLUGIN)
    matrix = (
        textwrap.dedent("""\
        name: serving-stale
        axes: {model: [tiny], backend: [triton-grpc], mode: [latency], precision: [fp32], batch: [4],
               seq_len: [16], phase: [prefill]}
        """)
        + SERVING
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    proc, records, _ = run_bench(tmp_path, matrix, "-p", "stale_plugin", env=env)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "a second input set (seed 1235)" in proc.stdout, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout
    record = records["tiny-triton-grpc-latency-fp32-b4-s16-prefill"]
    assert record["numerics"]["passed"] is False and record["latency_ms"]["n"] >= 3  # its numbers are kept
    assert leftovers(shm, records.values()) == []


def test_a_model_that_fails_to_load_carries_the_log_tail(tmp_path):
    shm = server.shm_regions()
    srv = server.EmbeddedServer(gpu=False).start()
    try:
        folder = srv.repository / "broken"
        (folder / "1").mkdir(parents=True)
        (folder / "config.pbtxt").write_text(
            'name: "broken"\nbackend: "python"\nmax_batch_size: 1\n'
            'input [ { name: "X" data_type: TYPE_INT64 dims: [ 1 ] } ]\n'
            'output [ { name: "Y" data_type: TYPE_INT64 dims: [ 1 ] } ]\n'
        )
        (folder / "1" / "model.py").write_text(
            "class TritonPythonModel:\n    def initialize(self, args):\n"
            "        raise RuntimeError('weights-missing-7731')\n"
        )
        with pytest.raises(BackendError) as info:
            srv.load("broken")
        message = str(info.value)
        assert message.startswith("triton | model broken failed to load: ")
        assert "weights-missing-7731" in message and "server log tail:" in message
        assert srv.alive(), "one broken model does not take the server down"
    finally:
        pid, workdir = srv.proc.pid, srv.workdir
        srv.stop()
    assert not psutil.pid_exists(pid) and not workdir.exists()
    assert server.shm_regions() - shm == set()


def test_a_server_that_cannot_start_reports_its_log(monkeypatch, tmp_path):
    # A stand-in binary that fails the way a broken installation does: a message, then exit 1.
    fake = tmp_path / "tritonserver"
    fake.write_text(
        "#!/bin/sh\necho 'error: creating server: Internal - libcuda-ish failure 4242' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv(server.BINARY_ENV, str(fake))
    srv = server.EmbeddedServer(gpu=False, startup_timeout_s=10)
    with pytest.raises(BackendError, match="exited with code 1 while starting; log tail:\n.*failure 4242"):
        srv.start()
    assert not srv.workdir.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_harness_that_is_killed_takes_its_server_along(tmp_path, signum):
    """SIGTERM: the harness's handler stops the server, then dies of the signal as before. SIGKILL: nothing in
    the harness runs; the kernel's parent-death signal makes the server stop itself (SIGTERM, clean exit)."""
    shm = server.shm_regions()
    script = (
        "import sys, time\nsys.path.insert(0, sys.argv[1])\n"
        "from backends.triton_server.server import shared_server\n"
        "srv = shared_server(gpu=False)\nprint(srv.proc.pid, srv.workdir, flush=True)\ntime.sleep(120)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script, str(ROOT)], stdout=subprocess.PIPE, text=True)
    try:
        pid, workdir = harness.stdout.readline().split()
        harness.send_signal(signum)
        assert harness.wait(timeout=60) == -signum
        deadline = time.monotonic() + 30
        while psutil.pid_exists(int(pid)) and psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, f"tritonserver {pid} outlived its harness"
            time.sleep(0.1)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    if signum == signal.SIGTERM:  # the handler ran: the server's folder went with it
        assert not Path(workdir).exists()
    else:  # no harness code ran after the kill; the folder is all that a SIGKILL leaves (tmp, no process)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    assert server.shm_regions() - shm == set()


def test_triton_url_uses_a_running_server_and_starts_none(tmp_path, run_bench):
    """A server of someone else's (here: one this test starts) serving a repository the generator's CLI wrote;
    the bench only connects to it."""
    from genrec_bench.backends.triton_server.repository import main as write_repository

    srv = server.EmbeddedServer(gpu=False).start()
    try:
        gpu = ["--gpu"] if torch.cuda.is_available() else []  # as the bench's `instance_kind: auto` decides
        assert write_repository(["--model", "tiny", "--out", str(srv.repository), *gpu]) == 0
        e = srv.endpoints
        url = f"http=127.0.0.1:{e.http_port},grpc=127.0.0.1:{e.grpc_port},metrics=127.0.0.1:{e.metrics_port}"
        matrix = (
            "name: remote\naxes: {model: [tiny], backend: [triton-grpc], mode: [latency], precision: [fp32],"
            " batch: [2], seq_len: [16], phase: [prefill]}\n"  # no serving: section, as the CLI's defaults
            "timing: {warmup_rounds: 1, rounds: 3, min_rounds: 3}\n"
        )
        before = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "tritonserver"}
        proc, records, _ = run_bench(tmp_path, matrix, "--triton-url", url)
        assert proc.returncode == 0, proc.stdout[-3000:]
        (record,) = records.values()
        assert record["backend"]["server"]["kind"] == "remote" and record["numerics"]["passed"] is True
        assert record["backend"]["server"]["version"] == "2.51.0"
        after = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "tritonserver"}
        assert after - before == set(), "the bench started no server of its own"
    finally:
        srv.stop()


def test_sigterm_during_a_triton_cell_leaves_nothing_of_ours(tmp_path, bench_command_line):
    """SIGTERM to the harness while a Triton cell is being timed: the session unwinds, the cell's session
    closes (its genrec-triton-cell-* folder goes) and the server and its stubs stop; no /dev/shm region is
    left."""
    import os

    shm, env_dirs = server.shm_regions(), set(Path("/tmp").glob("python_env_*"))
    tmp = tmp_path / "tmp"  # the run's own TMPDIR: the cell's and the server's folders land here
    tmp.mkdir()
    matrix, out = tmp_path / "m.yaml", tmp_path / "out.json"
    matrix.write_text(
        "name: term\naxes: {model: [tiny], backend: [triton-grpc], mode: [latency], precision: [fp32], "
        "batch: [2], seq_len: [16], phase: [prefill]}\n"
        "timing: {warmup_rounds: 1, rounds: 100000, min_rounds: 100000, max_time_s: 300}\n"
    )
    proc = subprocess.Popen(
        bench_command_line(matrix, out, target="bench/test_cells.py"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    ours: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while not list(tmp.glob("genrec-triton-cell-*")):  # the cell's session is prepared
            assert proc.poll() is None and time.monotonic() < deadline, "the Triton cell never started"
            time.sleep(0.2)
        time.sleep(2.0)  # into the timed rounds
        ours = psutil.Process(proc.pid).children(recursive=True)
        assert any(p.name() == "tritonserver" for p in ours), [p.name() for p in ours]
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    alive = []
    for p in ours:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.name()} {p.pid}")
        except psutil.NoSuchProcess:
            pass
    assert alive == [], f"processes of the run outlived it: {alive}"
    assert [p.name for p in tmp.iterdir() if p.name.startswith(("genrec-", "python_env_"))] == []
    assert server.shm_regions() - shm == set() and stubs(shm) == []
    assert set(Path("/tmp").glob("python_env_*")) - env_dirs == set()
