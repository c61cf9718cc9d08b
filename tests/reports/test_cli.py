"""Every exit code of `python -m reports` reached by a real run in a subprocess (as a CI job runs it), and one
line for bad input; the many ways of bad input run in-process through the same `main`, to keep the suite
fast."""

import json
import subprocess

import pytest

from genrec_bench.reports.cli import main


@pytest.fixture
def history(nights, tmp_path, capsys):
    paths, _ = nights
    store = tmp_path / "history"
    assert main(["history", "add", "--history", str(store), *map(str, paths)]) == 0
    assert capsys.readouterr().out.count("added: ") == 6
    return store


@pytest.fixture
def run_main(capsys):
    """`python -m reports ARGS` in this process: a CompletedProcess-like result."""

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def one_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_a_quiet_night_passes_and_writes_verdicts_beside_the_text(history, nights, kit, tmp_path):
    _, tonight = nights
    out = tmp_path / "gate" / "gate.txt"  # a folder that does not exist yet: created
    proc = kit.reports("gate", "--history", history, tonight(), "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exit 0: pass" in proc.stdout
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["exit_code"] == 0 and len(data["baseline_runs"]) == 6
    assert {v["verdict"] for v in data["verdicts"]} <= {"ok", "improvement", "suspect"}
    assert out.read_text().startswith("gate: tonight.json")


def test_a_planted_regression_exits_1_and_names_the_cell(history, nights, kit):
    _, tonight = nights
    slow = kit.CELLS[1]
    proc = kit.reports("gate", "--history", history, tonight(scale={slow: 1.2}))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REGRESSION"))
    assert (
        slow in line and "p50_ms" in line and "+2" in line and "exit 1: performance regression" in proc.stdout
    )


def test_an_oracle_flip_exits_2_even_beside_a_slowdown(history, nights, kit):
    _, tonight = nights
    proc = kit.reports(
        "gate", "--history", history, tonight(scale={kit.CELLS[1]: 1.2}, passed={kit.CELLS[0]: False})
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"CORRECTNESS       {kit.CELLS[0]}  oracle flipped to fail" in proc.stdout


def test_an_acknowledged_regression_passes_until_it_expires(history, nights, kit, run_main, tmp_path):
    _, tonight = nights
    run = tonight(scale={kit.CELLS[1]: 1.2})
    acks = tmp_path / "acks.yaml"
    for expires, code in (("2026-12-31", 0), ("2026-11-06", 1)):
        acks.write_text(
            f"acknowledgements:\n  - cell: 'tiny-*-fp16-*'\n    metric: '*'\n"
            f"    reason: known, see issue 12\n    expires: {expires}\n"
        )
        proc = run_main("gate", "--history", history, run, "--acknowledgements", acks)
        assert proc.returncode == code, proc.stdout + proc.stderr
    assert "expired on 2026-11-06" in proc.stdout


def test_no_comparable_baseline_is_3_only_with_strict(history, nights, kit, run_main):
    _, tonight = nights
    cpu = tonight(
        "cpu.json", hardware={"gpu_name": None, "gpu_count": 0}
    )  # another machine: fingerprint mismatch
    plain = run_main("gate", "--history", history, cpu)
    assert plain.returncode == 0 and "no runs of cpu-intel-r-xeon-r-processor" in plain.stdout
    strict = kit.reports("gate", "--history", history, cpu, "--strict")
    assert strict.returncode == 3 and "exit 3: no comparable baseline" in strict.stdout
    # Same GPU model, but two of them: the folder matches, the fingerprint does not.
    two = tonight("two.json", hardware=dict(kit.H100, gpu_count=2))
    proc = run_main("gate", "--history", history, two, "--strict")
    assert proc.returncode == 3 and "gpu_count 1 ≠ 2" in proc.stdout


def test_compare_two_runs(nights, kit, run_main):
    paths, tonight = nights
    assert run_main("compare", paths[0], paths[1]).returncode == 0
    proc = kit.reports("compare", paths[5], tonight(scale={kit.CELLS[2]: 1.3}), module="genrec_bench.reports")
    assert proc.returncode == 1 and kit.CELLS[2] in proc.stdout


@pytest.mark.parametrize(
    "content, words",
    [
        (b'{"benchmarks": [', "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text (byte 0x89 at offset 0)"),
        ('{"caf\xe9": 1}'.encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        (b"[1, 2]", "holds a JSON list, not an object"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_4(tmp_path, run_main, content, words):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for command in (("summary", bad), ("gate", "--history", tmp_path, bad), ("compare", bad, bad)):
        proc = run_main(*command)
        assert proc.returncode == 4 and words in one_line(proc), (command, proc.stderr)


def test_corrupt_json_exits_4_in_a_real_run(tmp_path, kit):
    bad = tmp_path / "cut.json"
    bad.write_text('{"benchmarks": [{"name": "x", "extra_info": {"cell"')
    proc = kit.reports("gate", "--history", tmp_path, bad)
    assert proc.returncode == 4
    assert (
        one_line(proc)
        == f"reports: {bad}:1: not valid JSON (Expecting ':' delimiter); was the run cut short?"
    )


def test_usage_mistakes_are_one_line_and_exit_4(tmp_path, nights, run_main):
    paths, _ = nights
    cases = [
        (("summary", tmp_path), "is a folder, not a results file"),
        (("gate", "--history", tmp_path / "nowhere", paths[0]), "no history here"),
        (("gate", paths[0]), "the following arguments are required: --history"),
        (("bogus",), "invalid choice: 'bogus'"),
        (("gate", "--history", tmp_path, paths[0], "--alpha", "2"), "alpha=2.0 must be between 0 and 1"),
        (("pivot", paths[0], "--rows", "colour"), "--rows/--cols take cell axes"),
    ]
    for args, words in cases:
        proc = run_main(*args)
        assert proc.returncode == 4 and words in one_line(proc), (args, proc.stderr)


def test_a_bad_acknowledgements_file_names_line_and_field(history, nights, run_main, tmp_path):
    _, tonight = nights
    acks = tmp_path / "acks.yaml"
    acks.write_text(
        "acknowledgements:\n  - cell: '*'\n    metric: latency\n    reason: x\n    expires: 2030-01-01\n"
    )
    proc = run_main("gate", "--history", history, tonight(), "--acknowledgements", acks)
    assert proc.returncode == 4
    assert one_line(proc).startswith(
        f"reports: {acks}:3: acknowledgements[0].metric: 'latency' is not one of"
    )


def test_invalid_records_are_named_and_the_rest_is_read(nights, kit, run_main, tmp_path):
    paths, _ = nights
    doc = json.loads(paths[0].read_text())
    doc["benchmarks"][1]["extra_info"] = {}  # a cell that failed after timing
    doc["benchmarks"][2]["extra_info"]["latency_ms"]["p50"] = float("nan")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))  # Python writes NaN, which JSON does not have
    proc = run_main("summary", broken)
    assert proc.returncode == 0 and "1 cells on" in proc.stdout
    empty, nan = proc.stderr.strip().splitlines()
    assert (
        empty == f"reports: {broken}: benchmarks[1] test_cell[{kit.CELLS[1]}]: empty extra_info: the cell "
        f"failed before its record was complete (skipped)"
    )
    assert (
        nan == f"reports: {broken}: benchmarks[2] test_cell[{kit.CELLS[2]}]: extra_info/latency_ms/p50: nan "
        f"is not a number JSON can hold (skipped)"
    )
    doc["benchmarks"] = doc["benchmarks"][2:]  # nothing valid left: an input error
    broken.write_text(json.dumps(doc))
    proc = run_main("summary", broken)
    assert proc.returncode == 4 and proc.stderr.strip().splitlines()[-1].endswith(
        "no valid cell records to report"
    )


def test_a_closed_pipe_is_silent(nights, kit):
    import sys

    paths, _ = nights
    # `reports pivot ... | head -1`: the reader leaves after one line; no BrokenPipeError may be printed.
    proc = subprocess.run(
        f"{sys.executable} -m reports pivot {' '.join(map(str, paths * 40))} | head -c 10",
        shell=True,
        cwd=kit.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stdout and proc.stderr == ""


def test_summary_out_creates_its_folder(nights, run_main, tmp_path):
    paths, _ = nights
    out = tmp_path / "a" / "b" / "summary.txt"
    proc = run_main("summary", paths[0], "--out", out)
    assert proc.returncode == 0 and out.read_text().startswith("3 cells on NVIDIA H100 80GB HBM3")
