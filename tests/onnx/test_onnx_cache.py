"""The export cache: hits never rebuild, misses say why, and a corrupt or partial entry is rebuilt, not
loaded."""

from __future__ import annotations

import json

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from genrec_bench.models.onnx_cache import OnnxCache, cache_key, cache_root, file_sha256
from genrec_bench.models.onnx_export import exported_model

FIELDS = {"model": "unit", "phase": "prefill", "precision": "fp32"}
KEY = cache_key(FIELDS)


def identity_builder(calls: list):
    """A build function writing a valid one-node ONNX file; it counts its calls."""

    def build(dest):
        calls.append(dest)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(dest))
        return {"opset": 20}

    return build


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GENREC_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path / "onnx"
    monkeypatch.delenv("GENREC_CACHE_DIR")
    assert cache_root().parts[-2:] == (".genrec-cache", "onnx")


def test_key_changes_with_every_field():
    assert cache_key(FIELDS) == cache_key(dict(reversed(list(FIELDS.items()))))
    for field, other in (("phase", "rank"), ("precision", "fp16"), ("model", "x")):
        assert cache_key({**FIELDS, field: other}) != KEY


def test_build_once_then_hit(tmp_path):
    cache, calls = OnnxCache(tmp_path), []
    entry, status = cache.get_or_build("unit", KEY, FIELDS, identity_builder(calls))
    assert entry.built and status == "built (not cached)" and len(calls) == 1
    manifest = json.loads(entry.path.with_suffix(".json").read_text())
    assert (
        manifest["sha256"] == file_sha256(entry.path) and manifest["key"] == KEY and manifest["opset"] == 20
    )
    again, status = OnnxCache(tmp_path).get_or_build("unit", KEY, FIELDS, identity_builder(calls))
    assert not again.built and again.path == entry.path and len(calls) == 1
    assert status.startswith("cached")
    # Nothing but the entry is left behind: temporary files are renamed or removed.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([entry.path.name, entry.path.stem + ".json"])


def _corrupt_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_garbage(path):
    path.write_bytes(b"\x00not an onnx file" * 8)


def _partial_no_manifest(path):
    path.with_suffix(".json").unlink()


def _manifest_other_key(path):
    manifest = path.with_suffix(".json")
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "key": "0" * 64}))


def _checker_rejects_with_matching_hash(path):
    # A file whose manifest agrees with it but that onnx.checker rejects (an op with no schema).
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    manifest = path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "sha256": file_sha256(path), "size": path.stat().st_size}))


@pytest.mark.parametrize(
    "damage, why",
    [
        (_corrupt_truncate, "size mismatch"),
        (_corrupt_garbage, "size mismatch"),
        (_partial_no_manifest, "partial entry"),
        (_manifest_other_key, "another key"),
        (_checker_rejects_with_matching_hash, "onnx.checker rejects"),
    ],
)
def test_damaged_entry_is_rebuilt(tmp_path, damage, why):
    cache, calls = OnnxCache(tmp_path), []
    entry, _ = cache.get_or_build("unit", KEY, FIELDS, identity_builder(calls))
    damage(entry.path)
    missing, reason = cache.lookup("unit", KEY)
    assert missing is None and why in reason
    rebuilt, status = cache.get_or_build("unit", KEY, FIELDS, identity_builder(calls))
    assert rebuilt.built and len(calls) == 2 and why in status
    assert file_sha256(rebuilt.path) == rebuilt.manifest["sha256"]
    onnx.checker.check_model(str(rebuilt.path))


def test_same_size_overwrite_is_caught_by_the_hash(tmp_path):
    cache, calls = OnnxCache(tmp_path), []
    entry, _ = cache.get_or_build("unit", KEY, FIELDS, identity_builder(calls))
    data = bytearray(entry.path.read_bytes())
    data[-1] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    missing, reason = cache.lookup("unit", KEY)
    assert missing is None and "sha256 mismatch" in reason


def test_failed_build_leaves_no_entry(tmp_path):
    cache = OnnxCache(tmp_path)

    def broken(dest):
        dest.write_bytes(b"half a file")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.get_or_build("unit", KEY, FIELDS, broken)
    assert list(tmp_path.iterdir()) == []
    assert cache.lookup("unit", KEY) == (None, "not cached")


def test_real_corrupted_export_is_rebuilt_and_runs(private_cache, tiny, tiny_prefill):
    """The bench's own path: a cached tiny export overwritten with garbage is exported again, then loads."""
    path = private_cache.root / tiny_prefill.path.name
    hit = exported_model(tiny, "prefill", "fp32", cache=private_cache)
    assert not hit.built and hit.path == path
    path.write_bytes(b"\x08\x07garbage" * 100)
    rebuilt = exported_model(tiny, "prefill", "fp32", cache=private_cache)
    assert rebuilt.built and rebuilt.path == path and "size mismatch" in rebuilt.status
    assert file_sha256(path) == rebuilt.sha256
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["ids", "lengths"]
