"""The correctness oracle: a cell's top-k against the same model in fp32 on CPU over the same inputs.

Two checks, both needed:
- value error: the cell's sorted top-k scores against the reference's sorted top-k scores (max abs, and that
  over the largest reference magnitude as the relative error). Sorting makes it indifferent to tie order.
- top-k agreement: the share of the cell's k items that the reference also ranks in its top k, where an item
  whose reference score ties the reference's k-th score (within the tie band) counts as in. The reference
  is computed with a wider k so the band can be seen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

DEFAULT_TOLERANCE = {
    # Measured headroom on the tiny/small presets: fp32 differs only by summation order (CPU vs GPU, compile);
    # fp16 has ~3 decimal digits, bf16 ~2, and the decoder stacks several of their roundings.
    "fp32": {"max_abs_err": float("inf"), "max_rel_err": 1e-3, "topk_agreement": 0.99},
    "fp16": {"max_abs_err": float("inf"), "max_rel_err": 2e-2, "topk_agreement": 0.80},
    # bf16: fp16's limit scaled by its 8x coarser mantissa. The rank head's small logits lose most: 9.9e-2
    # on the small preset at batch 1 (H100, every torch mode alike) with its top-k still exactly right.
    "bf16": {"max_abs_err": float("inf"), "max_rel_err": 1.6e-1, "topk_agreement": 0.60},
}


@dataclass(frozen=True)
class Numerics:
    reference: str
    max_abs_err: float
    max_rel_err: float
    topk_agreement: float
    tolerance: dict
    passed: bool
    message: str

    def as_dict(self) -> dict:
        out = asdict(self)
        out["tolerance"] = {k: (None if v == float("inf") else v) for k, v in self.tolerance.items()}
        return out


def tolerance_for(precision: str, overrides: dict | None = None) -> dict:
    """Default tolerance of a precision with the matrix's overrides on top."""
    return {**DEFAULT_TOLERANCE[precision], **((overrides or {}).get(precision, {}))}


def compare(ref_scores: torch.Tensor, ref_items: torch.Tensor, scores: torch.Tensor, items: torch.Tensor,
            tolerance: dict, reference: str = "fp32 on CPU, same inputs") -> Numerics:
    """Compare a cell's (scores, items) [B, k] with the reference's wider (scores, items) [B, K ≥ k]."""
    k = scores.shape[1]
    if ref_scores.shape[1] < k or scores.shape != items.shape or ref_scores.shape[0] != scores.shape[0]:
        raise ValueError(f"oracle shapes do not line up: reference {tuple(ref_scores.shape)}, "
                         f"cell scores {tuple(scores.shape)}, items {tuple(items.shape)}")
    ref_scores, scores = ref_scores.detach().double(), scores.detach().double()
    if not torch.isfinite(scores).all():
        bad = int((~torch.isfinite(scores)).sum())
        return _verdict(reference, float("nan"), float("nan"), 0.0, tolerance,
                        f"{bad} non-finite scores in the cell's output")
    top_ref = ref_scores[:, :k]
    diff = (scores.sort(dim=1, descending=True).values - top_ref).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = float(top_ref.abs().max()) if top_ref.numel() else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    # Tie band: reference items scoring within the precision's tolerance of the reference's k-th score.
    band = ref_scores >= (top_ref[:, -1:] - tolerance["max_rel_err"] * scale)
    agreement = _agreement(ref_items, band, items)
    problems = []
    if max_abs > tolerance["max_abs_err"]:
        problems.append(f"max_abs_err {max_abs:.3g} > {tolerance['max_abs_err']:.3g}")
    if max_rel > tolerance["max_rel_err"]:
        problems.append(f"max_rel_err {max_rel:.3g} > {tolerance['max_rel_err']:.3g}")
    if agreement < tolerance["topk_agreement"]:
        problems.append(f"topk_agreement {agreement:.3f} < {tolerance['topk_agreement']:.3f}")
    return _verdict(reference, max_abs, max_rel, agreement, tolerance, "; ".join(problems))


def _agreement(ref_items: torch.Tensor, band: torch.Tensor, items: torch.Tensor) -> float:
    hits = 0
    for row in range(items.shape[0]):
        allowed = set(ref_items[row][band[row]].tolist())
        hits += sum(1 for item in items[row].tolist() if item in allowed)
    return hits / items.numel() if items.numel() else 1.0


def _verdict(reference, max_abs, max_rel, agreement, tolerance, problems: str) -> Numerics:
    passed = not problems
    return Numerics(reference=reference, max_abs_err=max_abs, max_rel_err=max_rel, topk_agreement=agreement,
                    tolerance=dict(tolerance), passed=passed,
                    message="within tolerance" if passed else problems)


def recheck(first: Numerics, last: Numerics, what: str = "last timed round") -> Numerics:
    """Fold the verdict on a later check (`what`: the last timed round, a scenario's accuracy run) into the
    first's: the worst errors, both messages."""
    if last.passed:
        return first
    message = f"{what}: {last.message}" if first.passed else f"{first.message}; {what}: {last.message}"
    return Numerics(reference=first.reference, max_abs_err=max(first.max_abs_err, last.max_abs_err),
                    max_rel_err=max(first.max_rel_err, last.max_rel_err),
                    topk_agreement=min(first.topk_agreement, last.topk_agreement), tolerance=first.tolerance,
                    passed=False, message=message)
