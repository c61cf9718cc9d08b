"""The oracle, one deliberately wrong output per class of wrong answer it must catch; correct outputs pass."""

import pytest
import torch

from genrec_bench.bench.oracle import compare, worst
from genrec_bench.bench.reference_model import longer_history, noisy_padding, reference
from genrec_bench.bench.tolerances import LIMITS, limits_for, tolerance_mismatch
from genrec_bench.models import build_model, draw, phase_inputs, preset

K = preset("tiny").top_k


def ref_of(phase="prefill", batch=8, seed=3, model="tiny", seq_len=32):
    drawn = draw(preset(model), phase, batch, seq_len, seed=seed)
    return drawn, reference(model, phase, drawn)


def top(ref):
    return ref.scores[:, :K].clone(), ref.items[:, :K].clone()


def test_the_reference_itself_passes_every_phase():
    for phase in ("prefill", "decode", "rank"):
        _, ref = ref_of(phase)
        verdict = compare(ref, *top(ref), limits_for("fp32", phase))
        assert verdict.passed and verdict.max_abs_err == 0 and verdict.topk_agreement == 1.0, verdict.message
        assert verdict.pair_rel_err < 1e-6 and verdict.bias < 1e-7


def test_a_real_fp16_and_bf16_run_pass_and_are_not_exact():
    drawn, ref = ref_of()
    for precision, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        model = build_model("tiny").to(dtype)
        scores, items = model.prefill(*phase_inputs(model, "prefill", drawn, dtype=dtype))
        verdict = compare(ref, scores.float(), items, limits_for(precision, "prefill"))
        assert verdict.passed, verdict.message
        assert verdict.max_abs_err > 0


# 1. duplicated items
def test_a_repeated_item_in_a_catalogue_top_k_fails():
    _, ref = ref_of()
    scores, items = top(ref)
    items[2, 1] = items[2, 0]
    verdict = compare(ref, scores, items, limits_for("fp32", "prefill"))
    assert (
        not verdict.passed
        and f"row 2: item {int(items[2, 0])} appears 2 times in one top-k" in verdict.message
    )


def test_rank_may_repeat_a_candidate_only_as_often_as_the_candidates_do():
    drawn, ref = ref_of("rank", batch=64)
    row = next(
        r for r in range(64) if len(set(drawn["candidates"][r].tolist())) < drawn["candidates"].shape[1]
    )
    scores, items = top(ref)
    assert compare(ref, scores, items, limits_for("fp32", "rank")).passed
    unique = next(i for i in items[row].tolist() if ref.candidate_counts[row][i] == 1)
    slot = items[row].tolist().index(unique)
    items[row, (slot + 1) % K] = unique
    verdict = compare(ref, scores, items, limits_for("fp32", "rank"))
    assert (
        not verdict.passed and f"item {unique} appears 2 times but is a candidate 1 times" in verdict.message
    )


def test_an_item_outside_the_catalogue_or_the_padding_id_fails():
    _, ref = ref_of()
    for bad in (0, preset("tiny").num_items, -5):
        scores, items = top(ref)
        items[0, 3] = bad
        verdict = compare(ref, scores, items, limits_for("fp32", "prefill"))
        assert not verdict.passed and f"row 0: item {bad} is not a catalogue item" in verdict.message


# 2. scores not paired with their items
def test_items_reversed_against_their_scores_fail():
    _, ref = ref_of()
    scores, items = top(ref)
    verdict = compare(ref, scores, items.flip(1), limits_for("bf16", "prefill"))
    assert not verdict.passed and "scores not paired with their items" in verdict.message


def test_an_unsorted_row_fails():
    _, ref = ref_of()
    scores, items = top(ref)
    verdict = compare(ref, scores.flip(1), items.flip(1), limits_for("fp32", "prefill"))
    assert not verdict.passed and "not best first" in verdict.message


# 3. one wrong row in a batch
@pytest.mark.parametrize("batch", [8, 128])
def test_one_wholly_wrong_row_fails_and_is_named(batch):
    _, ref = ref_of(batch=batch)
    scores, items = top(ref)
    far = ref.items[5, K : 2 * K]  # items the reference ranks right below its top k: valid, paired, but wrong
    items[5], scores[5] = far, ref.scores[5, K : 2 * K]
    verdict = compare(ref, scores, items, limits_for("fp32", "prefill"))
    assert not verdict.passed and verdict.worst_row == 5 and "(row 5)" in verdict.message
    # Pooled over the batch (what the oracle used to judge) the row would hide: 7 of 8 rows, 127 of 128 agree.
    assert verdict.topk_agreement == 0.0 and verdict.topk_agreement_mean == pytest.approx((batch - 1) / batch)


# 4. systematic error hidden in a loose limit
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("error", ["scale", "shift"])
def test_a_one_percent_systematic_error_fails_the_catalogue_phases(precision, phase, error):
    _, ref = ref_of(phase, batch=16)
    scores, items = top(ref)
    scale = float(scores.abs().max())
    wrong = scores * 1.01 if error == "scale" else scores + 0.01 * scale
    verdict = compare(ref, wrong, items, limits_for(precision, phase))
    assert not verdict.passed and "systematic error: bias" in verdict.message


def test_rounding_noise_is_not_a_bias():
    _, ref = ref_of(batch=16)
    scores, items = top(ref)
    gen = torch.Generator().manual_seed(0)
    noisy = scores + torch.randn(scores.shape, generator=gen) * 1e-3 * float(scores.abs().max())
    noisy = noisy.sort(
        dim=1, descending=True
    ).values  # rounding can reorder near-ties; keep the row best-first
    verdict = compare(
        ref,
        noisy,
        items.gather(1, (noisy.unsqueeze(2) == noisy.unsqueeze(1)).float().argmax(1)),
        limits_for("fp16", "prefill"),
    )
    assert verdict.bias < LIMITS[("fp16", "prefill")]["max_bias"], verdict.message


# 8. the independent checks' inputs
def test_longer_history_appends_the_new_item_and_noisy_padding_leaves_real_items_alone():
    drawn = draw(preset("tiny"), "decode", 8, 32, seed=1)
    longer = longer_history(drawn)
    for row in range(8):
        n = int(drawn["lengths"][row])
        assert longer["lengths"][row] == n + 1 and longer["ids"][row, n] == drawn["new_ids"][row]
        assert torch.equal(longer["ids"][row, :n], drawn["ids"][row, :n])
    noisy = noisy_padding(drawn, preset("tiny").num_items, seed=1)
    padding = torch.arange(32).unsqueeze(0) >= drawn["lengths"].unsqueeze(1)
    assert torch.equal(noisy["ids"][~padding], drawn["ids"][~padding])
    assert (noisy["ids"][padding] > 0).all() and (noisy["ids"][padding] < preset("tiny").num_items).all()


def test_decode_equals_prefill_of_the_longer_history():
    drawn, ref = ref_of("decode")
    longer = reference("tiny", "prefill", longer_history(drawn))
    assert compare(longer, *top(ref), limits_for("fp32", "decode")).passed


def test_the_edge_workload_has_empty_and_overlong_users_and_the_model_answers_them():
    drawn = draw(preset("tiny-edge"), "prefill", 16, 64, seed=1234)
    assert (drawn["lengths"] == 0).any() and (drawn["raw_lengths"] > 64).any()
    ref = reference("tiny-edge", "prefill", drawn)
    assert torch.isfinite(ref.scores).all()


# 10. the limits a record was judged by
def test_a_record_judged_by_another_precisions_limits_is_caught():
    record = {
        "cell": {"precision": "fp32", "phase": "prefill"},
        "numerics": {"tolerance": limits_for("bf16", "prefill")},
    }
    assert "judged by the wrong limits: max_rel_err=0.025 (want 2e-05)" in tolerance_mismatch(record)
    record["numerics"]["tolerance"] = limits_for("fp32", "prefill")
    assert tolerance_mismatch(record) is None


def test_matrix_overrides_apply_per_precision_and_per_phase():
    overrides = {"fp16": {"max_rel_err": 1e-6, "rank": {"topk_agreement": 0.1}}}
    assert limits_for("fp16", "prefill", overrides)["max_rel_err"] == 1e-6
    assert limits_for("fp16", "rank", overrides)["topk_agreement"] == 0.1
    assert (
        limits_for("fp16", "prefill", overrides)["topk_agreement"]
        == LIMITS[("fp16", "prefill")]["topk_agreement"]
    )
    assert limits_for("fp16", "prefill", {"bf16": {"max_rel_err": 1.0}}) == LIMITS[("fp16", "prefill")]


def test_worst_keeps_a_good_first_verdict_and_names_where_a_bad_one_was_seen():
    _, ref = ref_of()
    good = compare(ref, *top(ref), limits_for("fp32", "prefill"))
    scores, items = top(ref)
    bad = compare(ref, scores * 2, items, limits_for("fp32", "prefill"))
    assert worst(good, good, "x") is good
    folded = worst(good, bad, "timed round 3 of 9")
    assert not folded.passed and folded.message.startswith("timed round 3 of 9: max_rel_err")
    assert folded.max_rel_err == bad.max_rel_err


def test_non_finite_output_fails():
    _, ref = ref_of()
    scores, items = top(ref)
    scores[0, 0] = float("nan")
    assert not compare(ref, scores, items, limits_for("fp16", "prefill")).passed


# 4. a loose agreement limit: a low precision may not return wrong items in every row
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_two_wrong_items_in_every_row_fail_a_low_precision(precision):
    _, ref = ref_of(batch=8)
    scores, items = top(ref)
    # The reference's items right below its top k, with their own scores: valid, paired and best first, but
    # wrong.
    items[:, -2:], scores[:, -2:] = ref.items[:, K + 3 : K + 5], ref.scores[:, K + 3 : K + 5]
    verdict = compare(ref, scores, items, limits_for(precision, "prefill"))
    assert not verdict.passed and "topk_agreement 0.800" in verdict.message, verdict.message
