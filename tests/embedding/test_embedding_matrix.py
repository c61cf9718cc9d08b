"""The `embedding` axis and section of a matrix, and a preset's `embedding:` mapping: ids that read like the
cell, and one line naming file, line, field and the fix for every mistake."""

from __future__ import annotations

import pytest

from genrec_bench.matrices import Cell, Known, MatrixError, load_matrix
from genrec_bench.models.embedding.spec import (
    EmbeddingError,
    EmbeddingSpec,
    label_overrides,
    spec_from_mapping,
)

KNOWN = Known(backends={"torch-cpu": ("eager", "compile"), "ort-cpu": ("eager",)}, models=("tiny",))
AXES = """\
axes:
  model: [tiny]
  backend: [torch-cpu]
  precision: [fp32]
  batch: [8]
  seq_len: [32]
  phase: [rank]
"""


def load(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_matrix(str(path), KNOWN)


def test_ids_spell_the_label_and_stay_as_they_were_without_one(tmp_path):
    matrix = load(tmp_path, AXES + "  embedding: [device, host, cached-10pct, cached-512mb-lru]\n")
    ids = [cell.id for cell, _ in matrix.cells(KNOWN)]
    assert ids == [
        "tiny-torch-cpu-fp32-b8-s32-rank-emb-device",
        "tiny-torch-cpu-fp32-b8-s32-rank-emb-host",
        "tiny-torch-cpu-fp32-b8-s32-rank-emb-cached-10pct",
        "tiny-torch-cpu-fp32-b8-s32-rank-emb-cached-512mb-lru",
    ]
    plain = load(tmp_path, AXES)
    assert [cell.id for cell, _ in plain.cells(KNOWN)] == ["tiny-torch-cpu-fp32-b8-s32-rank"]
    assert Cell("tiny", "torch-cpu", "eager", "fp32", 8, 32, "rank").embedding == ""


def test_rules_match_labels_and_the_section_keeps_its_knobs(tmp_path):
    matrix = load(
        tmp_path,
        AXES + "  embedding: [device, host]\n"
        "exclude:\n  - {embedding: host, reason: not today}\n"
        "include:\n  - {embedding: cached-1pct, reason: one cache}\n"
        "embedding: {policy: lru, ways: 8, storage: fp16, warm_lookups: 1000, warm_batches: 0,"
        " pool_batches: 4}\n",
    )
    cells = {cell.embedding: reason for cell, reason in matrix.cells(KNOWN)}
    assert cells == {"device": None, "host": "not today", "cached-1pct": None}
    assert matrix.sections["embedding"] == {
        "policy": "lru",
        "ways": 8,
        "storage": "fp16",
        "warm_lookups": 1000,
        "warm_batches": 0,
        "pool_batches": 4,
    }


def test_label_overrides():
    assert label_overrides("cached-2.5pct-lru") == {
        "placement": "cached",
        "fraction": 0.025,
        "gpu_budget_mb": None,
        "policy": "lru",
    }
    assert label_overrides("host") == {"placement": "host"} and label_overrides("") == {}


# (name, text after AXES, line, field, words)
BAD = [
    ("label unknown", "  embedding: [gpu]\n", 8, "axes.embedding[0]", "unknown embedding label 'gpu'"),
    ("label not a list", "  embedding: cached-10pct\n", 8, "axes.embedding", "must be a list"),
    ("label number", "  embedding: [10]\n", 8, "axes.embedding[0]", "must be a string label"),
    (
        "label zero",
        "  embedding: [cached-0pct]\n",
        8,
        "axes.embedding[0]",
        "greater than 0 and at most 100pct",
    ),
    ("label over 100", "  embedding: [cached-150pct]\n", 8, "axes.embedding[0]", "at most 100pct"),
    ("label no budget", "  embedding: [cached]\n", 8, "axes.embedding[0]", "labels look like"),
    (
        "label policy on host",
        "  embedding: [host-lru]\n",
        8,
        "axes.embedding[0]",
        "applies to cached labels only",
    ),
    ("label twice", "  embedding: [host, host]\n", 8, "axes.embedding[1]", "listed twice"),
    (
        "rule label",
        "include:\n  - {embedding: cached-x, reason: r}\n",
        9,
        "include[0].embedding",
        "unknown embedding label",
    ),
    ("section not mapping", "embedding: [lfu]\n", 8, "embedding", "must be a mapping"),
    (
        "section unknown",
        "embedding:\n  polcy: lfu\n",
        9,
        "embedding.polcy",
        "unknown key; expected one of: policy",
    ),
    ("section placement", "embedding:\n  placement: host\n", 9, "embedding.placement", "set per cell"),
    ("section budget", "embedding:\n  fraction: 0.1\n", 9, "embedding.fraction", "use the axis"),
    ("policy", "embedding:\n  policy: fifo\n", 9, "embedding.policy", "must be one of: lfu, lru"),
    ("storage", "embedding:\n  storage: int8\n", 9, "embedding.storage", "must be one of: auto, fp16, fp32"),
    ("ways zero", "embedding:\n  ways: 0\n", 9, "embedding.ways", "at least 1 and at most 1024"),
    ("ways float", "embedding:\n  ways: 2.5\n", 9, "embedding.ways", "must be an integer"),
    ("ways bool", "embedding:\n  ways: true\n", 9, "embedding.ways", "must be an integer"),
    ("negative warm", "embedding:\n  warm_batches: -1\n", 9, "embedding.warm_batches", "at least 0"),
    (
        "nan",
        "embedding:\n  warm_lookups: .nan\n",
        9,
        "embedding.warm_lookups",
        "is not a finite decimal number",
    ),
    ("pool zero", "embedding:\n  pool_batches: 0\n", 9, "embedding.pool_batches", "at least 1"),
]


@pytest.mark.parametrize("name, text, line, field, words", BAD, ids=[b[0] for b in BAD])
def test_bad_embedding_settings_are_one_line(tmp_path, name, text, line, field, words):
    with pytest.raises(MatrixError) as info:
        load(tmp_path, AXES + text)
    message = str(info.value)
    assert "\n" not in message and (info.value.line, info.value.field) == (line, field), message
    assert words in message and message.startswith(f"{tmp_path / 'm.yaml'}:{line}: {field}: ")


PRESET_BAD = [
    ({"placement": "gpu"}, "embedding.placement: must be one of: device, cached, host"),
    ({"placement": "cached"}, "placement cached needs exactly one budget"),
    ({"placement": "cached", "fraction": 0.1, "gpu_budget_mb": 64}, "got gpu_budget_mb, fraction"),
    ({"placement": "host", "fraction": 0.1}, "fraction applies to placement cached only"),
    (
        {"placement": "cached", "fraction": 1.5},
        "embedding.fraction: must be greater than 0.0 and at most 1.0",
    ),
    ({"placement": "cached", "gpu_budget_mb": float("inf")}, "must be a finite number, got inf"),
    ({"placement": "cached", "gpu_budget_mb": float("nan")}, "must be a finite number, got nan"),
    ({"colour": "red"}, "embedding.colour: unknown key"),
    ([1], "embedding: must be a mapping"),
]


@pytest.mark.parametrize("raw, words", PRESET_BAD, ids=[w for _, w in PRESET_BAD])
def test_a_bad_preset_embedding_is_one_line(raw, words):
    with pytest.raises(EmbeddingError) as info:
        spec_from_mapping(raw, "presets.yaml: preset p")
    assert (
        words in str(info.value)
        and "\n" not in str(info.value)
        and str(info.value).startswith("presets.yaml")
    )


def test_a_good_preset_embedding():
    spec = spec_from_mapping({"placement": "cached", "gpu_budget_mb": 64, "policy": "lru"}, "p")
    assert spec == EmbeddingSpec(placement="cached", gpu_budget_mb=64.0, policy="lru")
    assert spec_from_mapping(None, "p") == EmbeddingSpec()
