"""The oracle: a planted wrong output fails, a correct fp16 output passes, ties do not count as misses."""
import torch

from genrec_bench.bench.oracle import compare, tolerance_for
from genrec_bench.bench.reference_model import reference_topk
from genrec_bench.models import build_model, draw, phase_inputs, preset


def _reference(phase="prefill"):
    drawn = draw(preset("tiny"), phase, 8, 32, seed=3)
    return drawn, reference_topk("tiny", phase, drawn)


def test_the_reference_itself_passes():
    _, (scores, items) = _reference()
    k = preset("tiny").top_k
    verdict = compare(scores, items, scores[:, :k], items[:, :k], tolerance_for("fp32"))
    assert verdict.passed and verdict.max_abs_err == 0 and verdict.topk_agreement == 1.0


def test_planted_wrong_items_fail():
    _, (scores, items) = _reference()
    k = preset("tiny").top_k
    wrong = items[:, :k].clone()
    wrong[:, : k // 2] = items[:, -k // 2:]  # swap half the top-k for items ranked far below
    verdict = compare(scores, items, scores[:, :k], wrong, tolerance_for("fp32"))
    assert not verdict.passed and "topk_agreement" in verdict.message
    assert verdict.topk_agreement <= 0.5 + 1e-9


def test_planted_wrong_scores_fail():
    _, (scores, items) = _reference()
    k = preset("tiny").top_k
    verdict = compare(scores, items, scores[:, :k] * 1.05, items[:, :k], tolerance_for("fp32"))
    assert not verdict.passed and "max_rel_err" in verdict.message


def test_non_finite_output_fails():
    _, (scores, items) = _reference()
    k = preset("tiny").top_k
    bad = scores[:, :k].clone()
    bad[0, 0] = float("nan")
    assert not compare(scores, items, bad, items[:, :k], tolerance_for("fp16")).passed


def test_a_real_fp16_run_passes_and_is_not_exact():
    model = build_model("tiny").to(torch.float16)
    drawn, (scores, items) = _reference()
    got_scores, got_items = model.prefill(*phase_inputs(model, "prefill", drawn, dtype=torch.float16))
    verdict = compare(scores, items, got_scores.float(), got_items, tolerance_for("fp16"))
    assert verdict.passed, verdict.message
    assert verdict.max_abs_err > 0


def test_ties_at_the_kth_place_count_as_agreement():
    ref_scores = torch.tensor([[5.0, 4.0, 3.0, 3.0, 1.0]])
    ref_items = torch.tensor([[10, 11, 12, 13, 14]])
    # k=3: the cell picked item 13 instead of 12; both score 3.0 in the reference.
    verdict = compare(ref_scores, ref_items, torch.tensor([[5.0, 4.0, 3.0]]), torch.tensor([[10, 11, 13]]),
                      tolerance_for("fp32"))
    assert verdict.passed and verdict.topk_agreement == 1.0


def test_matrix_overrides_tighten_the_table():
    assert tolerance_for("fp16", {"fp16": {"max_rel_err": 1e-6}})["max_rel_err"] == 1e-6
    assert tolerance_for("fp16", {"bf16": {"max_rel_err": 1.0}}) == tolerance_for("fp16")


def test_recheck_keeps_a_good_first_verdict_and_reports_a_bad_last_round():
    from genrec_bench.bench.oracle import recheck

    _, (scores, items) = _reference()
    k = preset("tiny").top_k
    good = compare(scores, items, scores[:, :k], items[:, :k], tolerance_for("fp32"))
    bad = compare(scores, items, scores[:, :k] * 2, items[:, :k], tolerance_for("fp32"))
    assert recheck(good, good) is good
    folded = recheck(good, bad)
    assert not folded.passed and folded.message.startswith("last timed round: max_rel_err")
    assert folded.max_rel_err == bad.max_rel_err
