"""LoadGen scenarios through the embedded Triton server for real, on CPU, one server for the module:
SingleStream, Offline and Server cells (records valid against the schema, accuracy mode passing, every
request the SUT sent seen by the server), and LoadGen's Server scenario agreeing with our own Poisson
generator (bench/serving) at one rate against the same model."""

import dataclasses
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from genrec_bench.backends import get_backend
from genrec_bench.backends.triton_server import server
from genrec_bench.bench.cell_runner import run_cell
from genrec_bench.bench.loadgen import logs
from genrec_bench.bench.loadgen.qsl import library
from genrec_bench.bench.loadgen.runner import LoadGenSession
from genrec_bench.bench.loadgen.sut_served import ServedSUT
from genrec_bench.bench.plan import plan
from genrec_bench.bench.record import schema
from genrec_bench.bench.reference_model import model_for
from genrec_bench.bench.serving.scenarios import poisson_load
from genrec_bench.bench.timing import SAMPLE_CLOCK
from genrec_bench.matrices.serving import PoissonSpec

pytestmark = pytest.mark.serving
ROOT = Path(__file__).resolve().parents[2]
lg = pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed (the `loadgen` extra)")
CELL = "tiny-triton-grpc-latency-fp32-b8-s32-prefill-{}"
# The agreement: both generators at one rate against the same model at the same time, each for its own window
# (ours a little longer, so it covers LoadGen's), so whatever else loads a shared box loads both alike; the
# rate is low enough that requests do not queue behind each other.
RATE, MEASURE_S, STARTUP_S, AGREEMENT = 20.0, 5.0, 1.5, 0.10


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loadgen-triton")
    planned = plan(
        str(ROOT / "matrices" / "loadgen.yaml"), backends="triton-grpc", results_path=str(tmp / "out.json")
    )
    skipped = {p.cell.id: p.skip for p in planned.cells}
    if skipped[CELL.format("server")]:
        pytest.skip(skipped[CELL.format("server")])
    # One intra-op thread per Python stub: the ensemble's three stubs on two cores otherwise spin against each
    # other (and against the rest of a shared box), and latency is that contention, not the model's.
    patch = pytest.MonkeyPatch()
    patch.setenv("OMP_NUM_THREADS", "1")
    yield planned, tmp
    server.shutdown_all()
    patch.undo()


@pytest.mark.benchmark(timer=SAMPLE_CLOCK)
@pytest.mark.parametrize("scenario", ["singlestream", "offline", "server"])
def test_scenarios_through_the_embedded_server(benchmark, served, scenario):
    planned, tmp = served
    cell = planned.cell(CELL.format(scenario))
    record = run_cell(benchmark, cell, planned.context)
    jsonschema.validate(record, schema())
    section = record["scenario"]
    assert record["numerics"]["passed"] is True, record["numerics"]["message"]
    assert section["accuracy"]["passed"] is True and section["accuracy"]["samples_checked"] == 64
    assert section["sut"]["kind"] == "served" and section["sut"]["max_users_per_request"] == 8
    assert section["logs"] == {"kept": True, "dir": str(tmp / "out.loadgen" / cell.id)}
    assert record["throughput"]["sequences_per_s"] == section["result"]["samples_per_s"] > 0
    users = section["sut"]["mean_users_per_call"]
    assert users > 6 if scenario == "offline" else users == 1.0  # Offline's one query goes as requests of 8
    # The server saw every request the SUT sent (calibration, performance and accuracy runs, the first call).
    entry = record["serving"]["per_request"]["server"][record["backend"]["entry_model"]]
    assert entry["requests"] >= section["sut"]["calls"] + section["accuracy"]["samples_checked"] // 8


def test_loadgen_server_and_our_poisson_generator_agree(served, tmp_path, capsys):
    planned, _ = served
    cell = dataclasses.replace(planned.cell(CELL.format("server")), batch=1)
    with get_backend(cell.backend).prepare(model_for("tiny", "torch"), cell, planned.context) as session:
        qsl = library("tiny", "prefill", 32, 1, 7)  # one user: both generators send byte-identical requests
        session.runner(qsl.gather([0]))  # writes the request the Poisson generator sends
        target = session.served_target()
        sut = ServedSUT(session, target, qsl, max_request=1)
        runs = LoadGenSession(lg, sut, qsl.count)
        asked = {
            "scenario": "Server",
            "target_qps": RATE,
            "latency_bound_ms": 1000,
            "percentile": 0.5,
            "min_duration_ms": int(MEASURE_S * 1000),
            "min_query_count": 1,
            "performance_sample_count": 1,
            "seed": 0,
        }
        theirs = {}

        # a thread of its own: the Poisson run's server snapshots use a thread-bound client
        def loadgen_run():
            try:
                time.sleep(STARTUP_S)  # the Poisson generator's process imports and connects meanwhile
                runs.run(asked, tmp_path, accuracy=False, scenario="server")
                theirs["result"] = logs.result("server", tmp_path)
            except Exception as exc:  # noqa: BLE001 - handed to the test's thread below
                theirs["error"] = exc

        thread = threading.Thread(target=loadgen_run)
        try:
            thread.start()
            ours = poisson_load(
                target, PoissonSpec(rates=(RATE,), duration_s=MEASURE_S + 2 * STARTUP_S, warmup_s=0.3, seed=1)
            )
        finally:
            thread.join()
            runs.close()
            sut.close()
    if "error" in theirs:
        raise theirs["error"]
    theirs, (run,) = theirs["result"], ours["runs"]
    a, b = theirs["latency_ms"]["p50"], run["latency_ms"]["p50"]
    with capsys.disabled():
        print(
            f"\nLoadGen Server vs our Poisson generator, both at {RATE:g}/s at once: p50 {a:.3f} ms "
            f"({theirs['query_count']} queries) vs {b:.3f} ms ({run['latency_ms']['n']} requests, "
            f"worst issue lag {run['max_issue_lag_ms']:.2f} ms): {a / b - 1:+.1%}"
        )
    assert (
        theirs["query_count"] >= 0.8 * RATE * MEASURE_S and run["latency_ms"]["n"] >= 0.8 * RATE * MEASURE_S
    )
    assert abs(a - b) <= AGREEMENT * b
