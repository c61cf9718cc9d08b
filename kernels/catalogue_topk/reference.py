"""Torch reference of the full-catalogue top-k: the ground truth the Triton kernel is fuzzed against.

scores = states @ table[1:]ᵀ in fp32 on upcast inputs (row 0 of the table is padding and never returned),
then torch.topk. It materialises the [B, N] scores, which is what the kernel exists to avoid.

``check_topk`` states what "exact" means for a top-k computed in another summation order: the returned scores
are the items' true scores, and the returned items are the reference's except where scores tie (within the
rounding of an fp32 dot product) with the k-th.
"""

from __future__ import annotations

import torch


def catalogue_scores(states: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """fp32 scores of every row against table rows 1..N-1: [B, N-1] (column j is item j + 1)."""
    return states.float() @ table[1:].float().t()


def catalogue_topk_reference(
    states: torch.Tensor, table: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores [B, k] in states.dtype, item ids [B, k] int64 in 1..N-1), best first."""
    scores, index = torch.topk(catalogue_scores(states, table), k, dim=1)
    return scores.to(states.dtype), index + 1


def score_slack(states: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Per row, how far two fp32 summation orders of a dot product against any item can drift apart: [B, 1].

    |Σ a_i b_i − fl(Σ a_i b_i)| ≤ d·2^-24·Σ|a_i||b_i| for any order; twice that between two orders. tf32x3
    products (the kernel's fp32 path on tensor cores) add a few units of 2^-22 more, hence the factor 8.
    """
    dim = states.shape[1]
    magnitude = states.float().abs() @ table[1:].float().abs().t()
    return 8 * dim * 2.0**-24 * magnitude.amax(dim=1, keepdim=True) + 1e-30


def check_topk(
    got_scores: torch.Tensor,
    got_items: torch.Tensor,
    states: torch.Tensor,
    table: torch.Tensor,
    k: int,
    what: str = "",
) -> None:
    """Raise AssertionError unless (got_scores, got_items) is a top-k of states @ table[1:]ᵀ, best first.

    Exact up to ties: every returned item is a distinct real item (1..N-1) whose true score matches the
    returned score; scores are in descending order; and the returned set holds every item scoring above the
    reference's k-th score and nothing below it, where "above"/"below" allow the summation slack. Runs on
    the inputs' device (at N = 1M the fp32 scores are a gigabyte).
    """
    scores = catalogue_scores(states, table)
    batch = scores.shape[0]
    if got_items.shape != (batch, k) or got_scores.shape != (batch, k):
        raise AssertionError(
            f"{what} shapes {tuple(got_scores.shape)}, {tuple(got_items.shape)} != {(batch, k)}"
        )
    if got_items.dtype != torch.int64 or got_scores.dtype != states.dtype:
        raise AssertionError(f"{what} dtypes {got_scores.dtype}, {got_items.dtype} != {states.dtype}, int64")
    if batch == 0:
        return
    low, high = int(got_items.min()), int(got_items.max())
    if low < 1 or high >= table.shape[0]:
        raise AssertionError(f"{what} item ids outside 1..{table.shape[0] - 1}: {low}..{high}")
    ordered = got_items.sort(1).values
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        raise AssertionError(f"{what} an item is returned twice in one row")
    slack = score_slack(states, table)
    true = scores.gather(1, got_items - 1)
    rounding = torch.finfo(states.dtype).eps * true.abs()  # the final cast to states.dtype
    off = (got_scores.float() - true).abs() - (slack + rounding)
    if float(off.max()) > 0:
        row, col = divmod(int(off.argmax()), k)
        raise AssertionError(
            f"{what} row {row}: item {int(got_items[row, col])} returned with score "
            f"{float(got_scores[row, col]):.7g} but scores {float(true[row, col]):.7g}"
        )
    if k > 1 and bool((true[:, :-1] < true[:, 1:] - 2 * slack).any()):
        raise AssertionError(f"{what} scores are not in descending order")
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    below = true < kth - 2 * slack
    if bool(below.any()):
        row = int(below.any(1).nonzero()[0])
        raise AssertionError(
            f"{what} row {row}: returned items scoring below the k-th score {float(kth[row]):.7g}"
        )
    must = scores > kth + 2 * slack
    missing = must.sum(1) - must.gather(1, got_items - 1).sum(1)
    if bool((missing > 0).any()):
        row = int((missing > 0).nonzero()[0])
        raise AssertionError(
            f"{what} row {row}: {int(missing[row])} items scoring above the k-th are missing"
        )
