"""The recommender: deterministic, shapes per phase, decode on a KV cache equals a longer prefill."""

import pytest
import torch

from genrec_bench.models import PHASE_INPUTS, build_model, draw, phase_inputs, preset, presets
from genrec_bench.models.recommender import padded_to_jagged
from genrec_bench.models.workload import history_lengths, zipf_items


@pytest.fixture(scope="module", params=["tiny", "tiny-softmax"])
def model(request):
    return build_model(request.param)


def test_same_preset_same_weights():
    a, b = build_model("tiny"), build_model("tiny")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


@pytest.mark.parametrize("phase", list(PHASE_INPUTS))
@torch.inference_mode()
def test_phases_return_sorted_top_k(model, phase):
    cfg = model.cfg
    drawn = draw(cfg, phase, 4, 16, seed=0)
    scores, items = getattr(model, phase)(*phase_inputs(model, phase, drawn))
    k = min(cfg.top_k, cfg.num_candidates) if phase == "rank" else cfg.top_k
    assert scores.shape == items.shape == (4, k)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    assert bool((items > 0).all()) and bool((items < cfg.num_items).all())
    if phase == "rank":
        for row in range(4):
            assert set(items[row].tolist()) <= set(drawn["candidates"][row].tolist())


@torch.inference_mode()
def test_decode_on_the_cache_equals_prefill_of_the_longer_history(model):
    cfg = model.cfg
    drawn = draw(cfg, "decode", 6, 24, seed=5)
    scores, items = model.decode(*phase_inputs(model, "decode", drawn))
    ids, lengths = drawn["ids"].clone(), drawn["lengths"]
    ids[torch.arange(6), lengths] = drawn["new_ids"]  # append the new item in the free slot
    want_scores, want_items = model.prefill(ids, lengths + 1)
    torch.testing.assert_close(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert torch.equal(items, want_items)


@torch.inference_mode()
def test_padding_beyond_the_length_does_not_change_the_answer(model):
    drawn = draw(model.cfg, "prefill", 3, 20, seed=2)
    noisy = drawn["ids"].clone()
    pad = torch.arange(20).unsqueeze(0) >= drawn["lengths"].unsqueeze(1)
    noisy[pad] = 7
    a = model.prefill(drawn["ids"], drawn["lengths"])
    b = model.prefill(noisy, drawn["lengths"])
    torch.testing.assert_close(a[0], b[0])


def test_padded_to_jagged_packs_rows_in_order():
    ids = torch.tensor([[5, 6, 0], [0, 0, 0], [7, 8, 9]])
    lengths = torch.tensor([2, 0, 3])
    values, offsets = padded_to_jagged(ids, lengths)
    assert offsets.tolist() == [0, 2, 2, 5, 9]
    assert values[:5].tolist() == [5, 6, 7, 8, 9]
    assert values[5:].tolist() == [0, 0, 0, 0]


def test_workload_is_seeded_and_within_bounds():
    cfg = preset("tiny")
    a, b = draw(cfg, "rank", 32, 64, seed=9), draw(cfg, "rank", 32, 64, seed=9)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert int(a["lengths"].min()) >= 1 and int(a["lengths"].max()) <= 64
    assert a["candidates"].shape == (32, cfg.num_candidates)
    assert not torch.equal(a["ids"], draw(cfg, "rank", 32, 64, seed=10)["ids"])
    decode = draw(cfg, "decode", 32, 64, seed=1)
    assert int(decode["lengths"].max()) <= 63  # room for the new item


def test_zipf_popularity_is_skewed():
    cfg = preset("tiny")
    items = zipf_items(cfg, (20000,), torch.Generator().manual_seed(0))
    counts = torch.bincount(items, minlength=cfg.num_items).sort(descending=True).values
    assert counts[0] > 20 * counts[cfg.num_items // 2]  # the head is far more popular than the middle
    assert int(items.min()) >= 1


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "fixed"])
def test_history_length_distributions(dist):
    from dataclasses import replace

    work = replace(preset("tiny").workload, lengths=dist)
    lengths = history_lengths(work, 500, 40, torch.Generator().manual_seed(0))
    assert int(lengths.min()) >= 1 and int(lengths.max()) <= 40
    if dist == "fixed":
        assert bool((lengths == 40).all())
    else:
        assert len(set(lengths.tolist())) > 10


def test_presets_are_valid_and_base_is_gpu_scale():
    base = presets()["base"]
    assert (base.num_items, base.d_model, base.num_layers, base.max_seq_len) == (1_000_000, 256, 4, 512)


def test_too_long_a_sequence_is_refused():
    with pytest.raises(ValueError, match="exceeds preset tiny's max_seq_len=64"):
        draw(preset("tiny"), "prefill", 1, 65)
