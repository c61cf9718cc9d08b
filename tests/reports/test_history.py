"""The history store, the fingerprints and the committed baselines as the H100's first night."""

import json

import pytest

from genrec_bench.matrices.errors import ResultsError
from genrec_bench.reports import fingerprint as fp
from genrec_bench.reports.history import BASELINES, add, baseline_files, read_history, read_run
from genrec_bench.reports.load import load


def test_entries_are_append_only_and_adding_twice_is_a_no_op(nights, tmp_path):
    paths, _ = nights
    run = read_run(str(paths[0]))
    target, added = add(tmp_path / "h", run)
    assert added and target.parent.name == "nvidia-h100-80gb-hbm3"
    assert target.name == f"20261101T030000Z-{run.id}.json"
    before = target.read_bytes()
    assert add(tmp_path / "h", read_run(str(paths[0]))) == (target, False)
    assert target.read_bytes() == before and not list(target.parent.glob("*.tmp"))
    again = read_run(str(target))  # an entry reads back as the same run
    assert (again.id, again.time, again.cells.keys(), again.hardware) == (
        run.id,
        run.time,
        run.cells.keys(),
        run.hardware,
    )
    entry = json.loads(before)
    assert entry["run"]["commit"] == "0123456789abcdef" and entry["hardware_id"] == fp.short_hash(
        run.hardware
    )
    assert entry["cells"][0]["record"]["latency_ms"]["samples"]  # the raw samples travel with the record


def test_a_broken_entry_is_named_and_skipped(nights, tmp_path):
    paths, _ = nights
    target, _ = add(tmp_path / "h", read_run(str(paths[0])))
    (target.parent / "20261102T000000Z-broken.json").write_text("{")
    history = read_history(tmp_path / "h")
    assert len(history.runs) == 1
    assert history.problems == [
        f"{target.parent}/20261102T000000Z-broken.json:1: not valid JSON (Expecting "
        f"property name enclosed in double quotes); was the run cut short? (skipped)"
    ]


def test_the_committed_baselines_are_the_h100s_first_night(tmp_path):
    files = baseline_files(BASELINES)
    assert {f.name for f in files} >= {"nightly-small.json", "nightly-base.json", "kernels-micro.json"}
    first = [add(tmp_path / "a", read_run(str(f))) for f in files]
    second = [add(tmp_path / "b", read_run(str(f))) for f in files]
    assert [p.name for p, _ in first] == [p.name for p, _ in second]  # reproducible: same entries, same names
    history = read_history(tmp_path / "a")
    assert history.machines() == ["nvidia-h100-80gb-hbm3"] and not history.problems
    runs = history.runs
    assert {r.time[:10] for r in runs} == {"2026-11-23"}
    assert sum(len(r.cells) for r in runs) == 198 + 108 + 7 and sum(len(r.kernels) for r in runs) == 103
    nightly = next(r for r in runs if r.source == "nightly-base.json")
    assert nightly.hardware == {
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "gpu_count": None,
        "gpu_memory_gib": None,
        "compute_capability": None,
        "cpu_model": "Intel(R) Xeon(R) Processor",
    }
    assert nightly.software["torch"] == "2.11.0+cu130" and nightly.software["onnxruntime"] == "1.31.1"
    kernels = next(r for r in runs if r.source == "kernels-micro.json")
    assert fp.hardware_differences(kernels.hardware, nightly.hardware) == []  # unknown fields match anything
    # The same cell measured by two of that night's files is one series with two points.
    ids = [k for r in runs for k in r.cells if k.startswith("base-torch-cuda-compile-fp32-b1-s512-rank@")]
    assert len(ids) == 2 and len(set(ids)) == 1


def test_a_tonight_with_full_facts_is_comparable_with_the_baselines(nights, kit):
    _, tonight = nights
    run = read_run(str(tonight()))
    old = read_run(str(BASELINES / "nightly-small.json"))
    assert run.machine == old.machine
    assert fp.hardware_differences(old.hardware, run.hardware) == []  # the fields the baselines lack match
    assert fp.hardware_differences(dict(run.hardware, gpu_count=2), run.hardware) == ["gpu_count 2 ≠ 1"]


def test_series_keys_ignore_outcomes_and_software_but_not_options(nights):
    paths, _ = nights
    record = load(str(paths[0])).results[0].record
    key = fp.series_key(record)
    changed = json.loads(json.dumps(record))
    changed["timer"]["rounds"] = 7  # fitted into the time budget: an outcome
    changed["env"]["libraries"]["torch"] = "9.9"  # software: a marker, not a new series
    changed["latency_ms"]["p50"] = 99.0
    assert fp.series_key(changed) == key
    changed["backend"]["compile"] = {"dynamic": True}  # an option of the backend: a new series
    assert fp.series_key(changed) != key and fp.series_key(changed).startswith(record["cell"]["id"] + "@")


def test_v1_and_current_records_of_one_cell_share_a_series():
    old = read_run(str(BASELINES / "nightly-base.json"))
    record = next(r for r in old.cells.values() if r["backend"]["name"] == "ort-cuda")
    now = json.loads(json.dumps(record))
    now["schema_version"] = 2
    now["timer"]["pytest_benchmark"] = "benchmark.pedantic(iterations=1) with timer=sample_clock"
    now["backend"]["onnx"] = {"path": "/elsewhere.onnx", "cache": "hit", "prepare_s": 0.1}  # outcomes
    now["backend"]["onnxruntime"] = "1.32.0"
    now["backend"]["provider_options"]["CUDAExecutionProvider"]["new_default_of_a_later_release"] = "0"
    assert fp.series_key(now) == fp.series_key(record)


def test_unreadable_history_and_runs_are_one_line(tmp_path):
    with pytest.raises(ResultsError, match="no history here; start one with"):
        read_history(tmp_path / "missing")
    (tmp_path / "k.json").write_text(json.dumps({"machine": {"device": "X"}, "records": []}))
    with pytest.raises(ResultsError, match="machine.date is missing"):
        read_run(str(tmp_path / "k.json"))
    with pytest.raises(ResultsError, match="no valid records to add"):
        (tmp_path / "k.json").write_text(
            json.dumps({"machine": {"device": "X", "date": "2026-01-01"}, "records": [{"op": "x"}]})
        )
        add(tmp_path / "h", read_run(str(tmp_path / "k.json")))
