"""Fixtures of the ONNX tests (they need the `onnx` extra: onnx, onnxscript, onnxruntime).

A private export cache for the whole session, and one real export of the tiny preset's prefill that the tests
share: a dynamo export costs seconds on a 2-core box, so it is made once."""

from __future__ import annotations

import shutil

import pytest

from genrec_bench.bench.reference_model import cached_model
from genrec_bench.models.onnx_cache import CACHE_ENV, OnnxCache
from genrec_bench.models.onnx_export import exported_model


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """$GENREC_CACHE_DIR for this session: the tests never read or write the developer's .genrec-cache."""
    root = tmp_path_factory.mktemp("genrec-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="session")
def tiny():
    """The tiny preset's fp32 CPU model (the one the bench uses)."""
    return cached_model("tiny")


@pytest.fixture(scope="session")
def tiny_prefill(cache_dir, tiny):
    """The tiny prefill fp32 export, made once into the session cache."""
    export = exported_model(tiny, "prefill", "fp32")
    assert export.built
    return export


@pytest.fixture
def private_cache(tmp_path, tiny_prefill):
    """A cache of its own holding a copy of the shared tiny prefill entry, safe to corrupt."""
    model_copy = tmp_path / tiny_prefill.path.name
    shutil.copy2(tiny_prefill.path, model_copy)
    shutil.copy2(tiny_prefill.path.with_suffix(".json"), model_copy.with_suffix(".json"))
    return OnnxCache(tmp_path)
