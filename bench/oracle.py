"""The correctness oracle: a cell's top-k against the fp32 reference over the same inputs, judged row by row.

Every row must be a valid answer before it is a close one:
- every item is a real answer (inside the catalogue and not the padding id, or one of the row's candidates);
- no item repeats, except where the phase can repeat one (rank over candidates that repeat: at most as often
  as the candidates hold it) — items are compared as multisets;
- the row is best first (scores non-increasing), and each slot's score is the reference's score of that slot's
  item (`pair_rel_err`), so items in the wrong order against their scores cannot pass;
- the sorted scores are close to the reference's top-k scores (`max_rel_err`), and the row's items agree with
  the reference's top k, counting an item that ties the reference's k-th score as agreeing (`topk_agreement`,
  the worst row's);
- the errors are noise, not a shift or a scale (`bias`: the mean signed error, and its mean along the sign of
  the reference score, relative to the scale; rounding noise averages out, a systematic error does not).
Limits come per precision and phase from bench/tolerances.py (derived from measured runs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from genrec_bench.bench.reference_model import Reference
from genrec_bench.bench.tolerances import bias_limit


@dataclass(frozen=True)
class Numerics:
    reference: str
    max_abs_err: float
    max_rel_err: float
    pair_rel_err: float
    topk_agreement: float
    topk_agreement_mean: float
    worst_row: int
    bias: float
    tolerance: dict
    passed: bool
    message: str
    checks: tuple = field(default=())

    def as_dict(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in (
                "reference",
                "max_abs_err",
                "max_rel_err",
                "pair_rel_err",
                "topk_agreement",
                "topk_agreement_mean",
                "worst_row",
                "bias",
                "passed",
                "message",
            )
        }
        out["tolerance"] = {k: (None if v == float("inf") else v) for k, v in self.tolerance.items()}
        out["checks"] = list(self.checks)
        return out


def failed(reference: str, tolerance: dict, message: str, worst_row: int = -1) -> Numerics:
    """A verdict that failed before anything could be measured (no output, a shape, a non-finite score)."""
    nan = float("nan")
    return Numerics(reference, nan, nan, nan, 0.0, 0.0, worst_row, nan, dict(tolerance), False, message)


def compare(
    ref: Reference,
    scores: torch.Tensor,
    items: torch.Tensor,
    tolerance: dict,
    reference: str = "fp32 on CPU, same inputs",
) -> Numerics:
    """Judge a cell's (scores, items) [B, k] against `ref` under `tolerance` (max_rel_err, topk_agreement,
    max_bias; max_abs_err optional)."""
    k = scores.shape[1] if scores.dim() == 2 else -1
    if (
        scores.dim() != 2
        or scores.shape != items.shape
        or ref.scores.shape[0] != scores.shape[0]
        or ref.scores.shape[1] < k
    ):
        return failed(
            reference,
            tolerance,
            f"output shapes do not line up: scores {tuple(scores.shape)}, items "
            f"{tuple(items.shape)}, reference {tuple(ref.scores.shape)}",
        )
    scores, items = scores.detach().double(), items.detach().long()
    if not torch.isfinite(scores).all():
        bad = int((~torch.isfinite(scores)).sum())
        return failed(reference, tolerance, f"{bad} non-finite scores in the cell's output")
    invalid = _invalid_rows(ref, scores, items)
    if invalid:
        return failed(reference, tolerance, invalid[1], invalid[0])
    top_ref = ref.scores[:, :k].double()
    scale = float(top_ref.abs().max()) if top_ref.numel() else 0.0
    scale = scale if scale > 0 else 1.0
    paired, _ = ref.score_of(items)
    diff = (scores.sort(dim=1, descending=True).values - top_ref).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    gaps = (scores - paired).abs()
    pair = float(gaps.max()) / scale if scores.numel() else 0.0
    pair_at = divmod(int(gaps.argmax()), k) if scores.numel() else (0, 0)
    # Tie band: reference items scoring within the tolerance of the reference's k-th score count as top k.
    band = ref.scores.double() >= (top_ref[:, -1:] - tolerance["max_rel_err"] * scale)
    rows = _row_agreement(ref.items, band, items)
    worst = int(torch.tensor(rows).argmin()) if rows else -1
    signed = scores - paired
    bias = (
        max(abs(float(signed.mean())), abs(float((signed * paired.sign()).mean()))) / scale
        if signed.numel()
        else 0.0
    )
    problems = []
    if max_abs > tolerance.get("max_abs_err", float("inf")):
        problems.append(f"max_abs_err {max_abs:.3g} > {tolerance['max_abs_err']:.3g}")
    if max_abs / scale > tolerance["max_rel_err"]:
        problems.append(f"max_rel_err {max_abs / scale:.3g} > {tolerance['max_rel_err']:.3g}")
    if pair > tolerance["max_rel_err"]:
        row, slot = pair_at
        problems.append(
            f"scores not paired with their items: row {row} slot {slot} scores "
            f"{float(scores[row, slot]):.4g}, its item {int(items[row, slot])}'s reference score is "
            f"{float(paired[row, slot]):.4g} ({pair:.3g} of the scale > {tolerance['max_rel_err']:.3g})"
        )
    if rows and min(rows) < tolerance["topk_agreement"]:
        problems.append(f"topk_agreement {min(rows):.3f} (row {worst}) < {tolerance['topk_agreement']:.3f}")
    if bias > bias_limit(tolerance, scores.shape[0]):
        problems.append(
            f"systematic error: bias {bias:.3g} > {bias_limit(tolerance, scores.shape[0]):.3g} over "
            f"{scores.shape[0]} rows (rounding noise averages out; a shift or a scale does not)"
        )
    passed = not problems
    return Numerics(
        reference=reference,
        max_abs_err=max_abs,
        max_rel_err=max_abs / scale,
        pair_rel_err=pair,
        topk_agreement=min(rows) if rows else 1.0,
        topk_agreement_mean=sum(rows) / len(rows) if rows else 1.0,
        worst_row=worst,
        bias=bias,
        tolerance=dict(tolerance),
        passed=passed,
        message="within tolerance" if passed else "; ".join(problems),
    )


def _invalid_rows(ref: Reference, scores: torch.Tensor, items: torch.Tensor) -> tuple[int, str] | None:
    """(row, why) of the first row that is not a valid answer at all, else None."""
    _, valid = ref.score_of(items)
    for row in range(items.shape[0]):
        got = items[row].tolist()
        if not bool(valid[row].all()):
            bad = got[int((~valid[row]).nonzero()[0])]
            what = "one of the row's candidates" if ref.phase == "rank" else "a catalogue item (1..N-1)"
            return row, f"row {row}: item {bad} is not {what}"
        counts = Counter(got)
        if ref.repeats_allowed:
            over = [i for i, n in counts.items() if n > ref.candidate_counts[row][i]]
            if over:
                return row, (
                    f"row {row}: item {over[0]} appears {counts[over[0]]} times but is a candidate "
                    f"{ref.candidate_counts[row][over[0]]} times"
                )
        else:
            repeated = [i for i, n in counts.items() if n > 1]
            if repeated:
                return row, f"row {row}: item {repeated[0]} appears {counts[repeated[0]]} times in one top-k"
        if bool((scores[row, 1:] > scores[row, :-1]).any()):
            return row, f"row {row}: not best first (scores rise from one slot to the next)"
    return None


def _row_agreement(ref_items: torch.Tensor, band: torch.Tensor, items: torch.Tensor) -> list[float]:
    """Per row: the share of the cell's k items (as a multiset) within the reference's tie band."""
    out = []
    for row in range(items.shape[0]):
        allowed = Counter(ref_items[row][band[row]].tolist())
        got = Counter(items[row].tolist())
        hits = sum(min(n, allowed[i]) for i, n in got.items())
        out.append(hits / items.shape[1] if items.shape[1] else 1.0)
    return out


def worst(first: Numerics, other: Numerics, label: str) -> Numerics:
    """Fold the verdict of another look at the cell (`label`: a timed round, a second input set, ...) into the
    first's: the worst errors, and the failure named by where it was seen."""
    if other.passed:
        return first
    message = f"{label}: {other.message}" if first.passed else f"{first.message}; {label}: {other.message}"
    nan_max = lambda a, b: max((x for x in (a, b) if x == x), default=float("nan"))  # noqa: E731 - NaN-aware
    return Numerics(
        reference=first.reference,
        max_abs_err=nan_max(first.max_abs_err, other.max_abs_err),
        max_rel_err=nan_max(first.max_rel_err, other.max_rel_err),
        pair_rel_err=nan_max(first.pair_rel_err, other.pair_rel_err),
        topk_agreement=min(first.topk_agreement, other.topk_agreement),
        topk_agreement_mean=min(first.topk_agreement_mean, other.topk_agreement_mean),
        worst_row=other.worst_row,
        bias=nan_max(first.bias, other.bias),
        tolerance=first.tolerance,
        passed=False,
        message=message,
        checks=first.checks,
    )
