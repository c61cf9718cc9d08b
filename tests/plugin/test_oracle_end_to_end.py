"""Each class of wrong answer, end to end: a cell of a backend that gives it fails with the reason, its
numbers still in the JSON, while a correct cell of the same matrix passes."""

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CONFTEST = """\
pytest_plugins = ["genrec_bench.conftest"]
import misbehaving_backends as faulty
from genrec_bench.backends import register_backend, unregister_backend


def pytest_configure(config):
    for kind in faulty.KINDS:
        register_backend(faulty.backend_class(kind))


def pytest_unconfigure(config):
    for kind in faulty.KINDS:
        unregister_backend(f"faulty-{kind}")
"""


@pytest.fixture
def project(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        misbehaving_backends=(HERE / "misbehaving_backends.py").read_text(),
        test_cells=(HERE.parents[1] / "bench" / "test_cells.py").read_text(),
    )
    return pytester


def run(
    project, *, backend, model="tiny", precision="fp32", phase="prefill", seq_len=32, kernel="torch", batch=4
):
    backends = backend if backend == "torch-cpu" else f"{backend}, torch-cpu"
    matrix = project.makefile(
        ".yaml",
        m=f"""\
name: faults
axes: {{model: [{model}], backend: [{backends}], precision: [{precision}], batch: [{batch}],
       seq_len: [{seq_len}], phase: [{phase}], kernel: [{kernel}]}}
timing: {{warmup_rounds: 2, rounds: 3, min_rounds: 2, max_time_s: 0.2}}
""",
    )
    out = project.path / "out.json"
    reports = project.inline_run("--matrix", str(matrix), "--benchmark-json", str(out))
    outcomes = {
        r.nodeid.split("[", 1)[1][:-1]: r
        for r in reports.getreports("pytest_runtest_logreport")
        if r.when == "call"
    }
    records = {
        b["extra_info"]["cell"]["id"]: b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]
    }
    return outcomes, records


@pytest.mark.parametrize(
    "kind, cell_args, words",
    [
        ("duplicate", {}, "row 0: item"),
        ("reversed", {}, "scores not paired with their items"),
        ("one-row", {}, "(row 1)"),
        ("scale", {"precision": "fp16"}, "systematic error: bias"),
        ("second-call", {}, "call 2 of"),
        ("stale", {}, "a second input set (seed 1235)"),
        (
            "empty-history",
            {"model": "tiny-edge", "seq_len": 64},
            "scores not paired with their items: row 3 slot 0",
        ),
        (
            "fp32-as-bf16",
            {"precision": "bf16"},
            "false label: the scores were computed in float32, not the cell's bf16",
        ),
        (
            "torch-as-triton",
            {"phase": "rank", "kernel": "triton"},
            "false label: kernel=triton but the dispatch took interaction:torch, jagged_pooling:torch",
        ),
    ],
)
def test_a_wrong_answer_fails_its_cell_and_keeps_its_numbers(project, kind, cell_args, words):
    outcomes, records = run(project, backend=f"faulty-{kind}", **cell_args)
    faulty = next(k for k in outcomes if f"faulty-{kind}" in k)
    fine = next(k for k in outcomes if "torch-cpu" in k)
    assert outcomes[faulty].failed and words in str(outcomes[faulty].longrepr), str(outcomes[faulty].longrepr)
    assert outcomes[fine].passed, str(outcomes[fine].longrepr)
    assert records[faulty]["numerics"]["passed"] is False and records[faulty]["latency_ms"]["n"] >= 2
    assert records[fine]["numerics"]["passed"] is True


def test_a_cold_start_bug_passes_plain_users_and_only_the_edge_workload_catches_it(project):
    outcomes, _ = run(project, backend="faulty-empty-history")
    assert all(r.passed for r in outcomes.values())


def test_a_record_says_what_ran_and_which_checks_it_passed(project):
    _, records = run(project, backend="torch-cpu", phase="decode", precision="bf16")
    record = records["tiny-torch-cpu-bf16-b4-s32-decode"]
    assert record["provenance"]["output_dtype"] == "bfloat16" and record["provenance"]["kernels"] == {}
    checks = " | ".join(record["numerics"]["checks"])
    for words in (
        "every call: the first, 2 warm-up and",
        "a second input set",
        "prefill of the history with the new item appended",
        "random item ids in every padding position",
    ):
        assert words in checks


SHARED_BUG = """\
from genrec_bench.models.recommender import GenerativeRecommender
original = GenerativeRecommender.{method}


def buggy(self, *args):
    {body}


def pytest_configure(config):
    GenerativeRecommender.{method} = buggy


def pytest_unconfigure(config):
    GenerativeRecommender.{method} = original
"""


@pytest.mark.parametrize(
    "phase, method, body, words",
    [
        # The user state read one position too far: at the first padding slot. Both the cell and the reference
        # run this code, so they agree; only random padding ids expose it.
        (
            "prefill",
            "_encode",
            "ids, lengths = args; return original(self, ids, (lengths + 1).clamp(max=ids.shape[1]))",
            "random ids in the padding",
        ),
        # The new item does not attend to itself in decode: cell and reference agree; prefill of the longer
        # history does not.
        (
            "decode",
            "decode_state",
            "new_ids, lengths, k, v = args; return original(self, new_ids, lengths - 1, k, v)",
            "decode against prefill of the longer history",
        ),
    ],
)
def test_a_bug_the_reference_shares_is_caught_by_a_check_that_needs_no_second_implementation(
    pytester, project, phase, method, body, words
):
    pytester.makepyfile(shared_bug=SHARED_BUG.format(method=method, body=body))
    pytester.makeconftest(CONFTEST + 'pytest_plugins = ["genrec_bench.conftest", "shared_bug"]\n')
    outcomes, _ = run(project, backend="torch-cpu", phase=phase)
    (only,) = [r for k, r in outcomes.items() if "torch-cpu" in k]
    assert only.failed and words in str(only.longrepr), str(only.longrepr)


WRONG_LOOKUP = """\
from genrec_bench.bench import cell_runner
original = cell_runner.limits_for


def pytest_configure(config):
    # The lookup a cell is judged by, broken: every precision gets bf16's limits.
    cell_runner.limits_for = lambda precision, phase, overrides=None: original("bf16", phase, overrides)


def pytest_unconfigure(config):
    cell_runner.limits_for = original
"""


def test_a_cell_judged_by_another_precisions_limits_fails_though_its_answer_is_right(pytester, project):
    pytester.makepyfile(wrong_lookup=WRONG_LOOKUP)
    pytester.makeconftest(CONFTEST + 'pytest_plugins = ["genrec_bench.conftest", "wrong_lookup"]\n')
    outcomes, records = run(project, backend="torch-cpu")
    (only,) = outcomes.values()
    assert only.failed, "an fp32 cell judged by bf16's limits must fail"
    assert "false label: judged by the wrong limits: max_rel_err=0.025 (want 2e-05)" in str(only.longrepr), (
        str(only.longrepr)
    )
    (record,) = records.values()
    assert record["numerics"]["passed"] is False and record["numerics"]["tolerance"]["max_rel_err"] == 0.025
