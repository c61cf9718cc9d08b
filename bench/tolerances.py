"""How far a cell may be from the fp32 reference, per precision AND phase, and the check that a record was
judged by its own precision's and phase's limits.

Each limit is the largest value measured over correct cells (every backend, mode and batch of the smoke and
nightly matrices: CPU in CI, the H100 nightly) times a margin, so a correct cell passes with room and a wrong
one — a swapped row, a 1 % scale or shift, an fp32 cell computed in bf16 — does not. The measurement behind
each number is recorded below (MEASURED); `python -m genrec_bench.bench.measure_tolerances RUN.json...`
reprints it from result files.

- max_rel_err: the largest score error (sorted scores against the reference's top k, and each slot's score
  against its own item's reference score) over the largest reference score.
- topk_agreement: the worst row's share of items within the reference's top k (ties at the k-th score agree).
- max_bias: the mean signed error (and its mean along the sign of the reference score) over the scale, for one
  row: ~0 for rounding noise, the size of the error for a shift or a scale (see bias_limit for a batch).
"""

from __future__ import annotations

import math

from genrec_bench.matrices.cells import PHASES, PRECISIONS

LIMIT_NAMES = ("max_rel_err", "topk_agreement", "max_bias", "max_abs_err")

# (precision, phase) → limits, from the measured maxima (CPU: matrices/oracle-limits.yaml; H100: the nightly
# baselines) with a margin of about 2-4×. fp32 differs from the reference only by summation order; fp16 keeps
# ~3 decimal digits, bf16 ~2; rank's small logits lose the most relative to their scale.
LIMITS: dict[tuple[str, str], dict[str, float]] = {
    ("fp32", "prefill"): {"max_rel_err": 2e-5, "topk_agreement": 0.9, "max_bias": 5e-6},
    ("fp32", "decode"): {"max_rel_err": 2e-5, "topk_agreement": 0.9, "max_bias": 5e-6},
    ("fp32", "rank"): {"max_rel_err": 2e-5, "topk_agreement": 0.9, "max_bias": 5e-6},
    ("fp16", "prefill"): {"max_rel_err": 5e-3, "topk_agreement": 0.9, "max_bias": 6e-4},
    ("fp16", "decode"): {"max_rel_err": 5e-3, "topk_agreement": 0.9, "max_bias": 6e-4},
    ("fp16", "rank"): {"max_rel_err": 2.5e-2, "topk_agreement": 0.9, "max_bias": 1.2e-2},
    ("bf16", "prefill"): {"max_rel_err": 2.5e-2, "topk_agreement": 0.9, "max_bias": 2.5e-3},
    ("bf16", "decode"): {"max_rel_err": 2.5e-2, "topk_agreement": 0.9, "max_bias": 2.5e-3},
    ("bf16", "rank"): {"max_rel_err": 1.6e-1, "topk_agreement": 0.9, "max_bias": 1e-1},
}
# topk_agreement is 0.9 for every precision: every correct cell measured agrees fully in its worst row (1.00),
# and 0.9 leaves one item in ten (the smallest preset k) for a near-tie the tie band misses; 0.7 would have
# let a bf16 cell return 3 wrong items of 10 in every row.
#
# MEASURED — the largest error of correct cells, per (precision, phase); bias is per batch (its limit per
# row). CPU: matrices/oracle-limits.yaml (tiny, tiny-softmax, tiny-edge, small; torch-cpu and ort-cpu; batch
# 1/8/32), 171 cells, all passing:
#   precision phase    cells max_rel_err pair_rel_err bias     worst-row agreement
#   fp32      prefill  22    4.83e-07    4.90e-07     3.45e-08 1.00
#   fp32      decode   22    6.02e-07    5.27e-07     3.08e-08 1.00
#   fp32      rank     22    1.45e-06    1.45e-06     3.04e-07 1.00
#   fp16      prefill  22    1.24e-03    1.32e-03     1.44e-04 1.00
#   fp16      decode   22    1.05e-03    1.05e-03     1.31e-04 1.00
#   fp16      rank     22    5.07e-03    5.07e-03     3.85e-03 1.00
#   bf16      prefill  13    9.15e-03    9.15e-03     7.91e-04 1.00
#   bf16      decode   13    9.12e-03    9.12e-03     8.10e-04 1.00
#   bf16      rank     13    6.25e-02    6.25e-02     4.60e-02 1.00
# H100 nightly (reports/baselines/h100/nightly-*.json, version 1 records: no pairing error or bias), 306
# cells:
#   fp32 prefill/decode/rank 1.35e-06 / 1.26e-06 / 3.83e-06; fp16 1.94e-03 / 1.76e-03 / 8.35e-03;
#   bf16 1.02e-02 / 1.03e-02 / 9.91e-02 (max_rel_err); agreement 1.00 in every cell.
# fp32's limits sit far above its measurement on purpose: summation order differs by backend and batch.
#
# max_bias is for one row (user). Rows are independent, so the mean of their rounding noise shrinks as
# 1/√rows; a systematic error does not. The limit a batch is held to is max_bias / √min(rows, BIAS_ROWS_CAP):
# the cap keeps a floor under very large batches, where a low precision's own small systematic rounding may
# show.
BIAS_ROWS_CAP = 64


def bias_limit(tolerance: dict, rows: int) -> float:
    """The bias a batch of `rows` users is held to (see BIAS_ROWS_CAP)."""
    return tolerance["max_bias"] / math.sqrt(max(1, min(rows, BIAS_ROWS_CAP)))


def limits_for(precision: str, phase: str, overrides: dict | None = None) -> dict[str, float]:
    """The table's limits of (precision, phase) with the matrix's `tolerance:` overrides on top: a precision's
    own keys apply to every phase, a phase's keys under it to that phase only."""
    if (precision, phase) not in LIMITS:
        raise ValueError(
            f"no oracle limits for precision={precision!r} phase={phase!r}; precisions: "
            f"{', '.join(PRECISIONS)}; phases: {', '.join(PHASES)}"
        )
    out = dict(LIMITS[(precision, phase)])
    mine = (overrides or {}).get(precision, {})
    out.update({k: v for k, v in mine.items() if k in LIMIT_NAMES})
    out.update(mine.get(phase, {}))
    return out


def tolerance_mismatch(record: dict, overrides: dict | None = None) -> str | None:
    """Why the record's `numerics.tolerance` is not the one its own cell's precision and phase call for, or
    None. A wrong lookup (fp32 judged by bf16's limits) must fail the cell, not loosen it."""
    cell = record["cell"]
    want = limits_for(cell["precision"], cell["phase"], overrides)
    got = record["numerics"]["tolerance"]
    wrong = [k for k, v in want.items() if not _same(got.get(k), v)]
    if not wrong:
        return None
    return (
        f"judged by the wrong limits: {', '.join(f'{k}={got.get(k)} (want {want[k]})' for k in wrong)} for "
        f"{cell['precision']} {cell['phase']}"
    )


def _same(got, want: float) -> bool:
    if want == math.inf:
        return got is None or got == math.inf
    return got is not None and math.isclose(got, want, rel_tol=1e-12)
