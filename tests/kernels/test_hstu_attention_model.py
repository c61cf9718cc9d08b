"""The recommender with kernel="triton": the jagged encoder, the paged-cache decode and the catalogue kernel
give the padded torch model's answers (tiny preset, Triton's interpreter on CPU)."""

from __future__ import annotations

import pytest
import torch

from genrec_bench.kernels.hstu_attention import PagedCache
from genrec_bench.models import build_model, draw, phase_inputs
from genrec_bench.models import jagged_encoder as je

pytest.importorskip("triton")


@pytest.fixture(scope="module")
def models():
    torch_model = build_model("tiny")
    return torch_model, torch_model.variant(kernel="triton")


def _drawn(model, phase, batch=4, seq_len=24, seed=7):
    drawn = draw(model.cfg, phase, batch, seq_len, seed=seed)
    if phase != "rank":
        drawn["lengths"][1] = 0  # an empty history: both encoders read its first slot as padding (id 0)
    return drawn


@pytest.mark.parametrize("phase", ["prefill", "decode", "rank"])
@torch.inference_mode()
def test_triton_model_gives_the_torch_models_answers(models, phase, device):
    torch_model, triton_model = (m.to(device) for m in models)
    drawn = _drawn(torch_model, phase)
    want = getattr(torch_model, phase)(*phase_inputs(torch_model, phase, drawn, device))
    got = getattr(triton_model, phase)(*phase_inputs(triton_model, phase, drawn, device))
    torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-5)
    assert torch.equal(got[1], want[1])


@torch.inference_mode()
def test_decode_cache_is_paged_and_a_repeated_step_sees_the_same_history(models, device):
    triton_model = models[1].to(device)
    new_ids, lengths, k_cache, v_cache = phase_inputs(
        triton_model, "decode", _drawn(triton_model, "decode"), device
    )
    assert isinstance(k_cache, PagedCache) and k_cache.page_table is v_cache.page_table
    first = triton_model.decode(new_ids, lengths, k_cache, v_cache)
    pages = k_cache.pages.clone()
    second = triton_model.decode(new_ids, lengths, k_cache, v_cache)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert torch.equal(k_cache.pages, pages)


@torch.inference_mode()
def test_capture_path_over_all_rows_gives_the_same_state(models, device, monkeypatch):
    """Under CUDA-graph capture the encoder runs all B·S rows (no host sync); padding rows must not leak."""
    triton_model = models[1].to(device)
    drawn = _drawn(triton_model, "prefill")
    ids, lengths = drawn["ids"].to(device), drawn["lengths"].to(device)
    want = je.encode(triton_model, ids, lengths)[0]
    monkeypatch.setattr(je, "row_count", lambda ids, offsets: ids.numel())
    got = je.encode(triton_model, ids, lengths)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@torch.inference_mode()
def test_compiled_triton_model_runs_the_kernels_between_compiled_layers(models, device):
    torch._dynamo.reset()
    torch_model, triton_model = (m.to(device) for m in models)
    drawn = _drawn(torch_model, "prefill", batch=2, seq_len=12)
    compiled = torch.compile(triton_model.prefill, dynamic=False, backend="aot_eager")
    got = compiled(*phase_inputs(triton_model, "prefill", drawn, device))
    want = torch_model.prefill(*phase_inputs(torch_model, "prefill", drawn, device))
    torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-5)
    assert torch.equal(got[1], want[1])
