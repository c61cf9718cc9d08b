"""Torch reference of jagged HSTU attention: the ground truth the Triton kernels are fuzzed against.

HSTU attention (the model's ``HSTUBlock.attend``) for query i of a user, over that user's keys j ≤ i:

    out_i = Σ_{j ≤ i} SiLU(q_i·k_j / √dh) · v_j / (i + 1)

The division is by the number of positions query i may see, so a decode step (query at position n against n
cached keys plus itself) divides by n + 1, exactly as the prefill row it extends. Everything is computed in
fp32 on upcast inputs over a padded copy of the jagged rows, and cast back once.

``allowed_error`` gives the error a fast kernel may make element by element: it runs the same sums over
|score| and |v| (no cancellation), which is what the rounding of the weights and of tanh-based SiLU scale
with.
"""

from __future__ import annotations

import math

import torch

from ..tolerances import TOLERANCES


def jagged_positions(offsets: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(user, position in that user's row) of each of the first ``total`` rows of a jagged tensor."""
    rows = offsets.numel() - 1
    index = torch.arange(total, device=offsets.device)
    user = torch.searchsorted(offsets[1:].contiguous(), index, right=True).clamp(max=max(rows - 1, 0))
    return user, index - offsets[user]


def _padded(x: torch.Tensor, user: torch.Tensor, pos: torch.Tensor, rows: int, width: int) -> torch.Tensor:
    """Jagged [T, H, dh] → fp32 zero-padded [B, H, width, dh]."""
    out = x.new_zeros((rows, width, *x.shape[1:]), dtype=torch.float32)
    out[user, pos] = x.float()
    return out.transpose(1, 2)


def _attend(q, k, v, visible, count, magnitude: bool) -> torch.Tensor:
    """q [B, H, M, dh] against k, v [B, H, N, dh]; ``visible`` [B, M, N] says which keys each query sees and
    ``count`` [B, M] is what its sum is divided by. Returns [B, H, M, dh] in fp32."""
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    weights = scores.abs() if magnitude else torch.nn.functional.silu(scores)
    weights = weights.masked_fill(~visible[:, None], 0.0) / count.to(torch.float32)[:, None, :, None]
    return torch.matmul(weights, v.abs() if magnitude else v)


def hstu_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor, *, magnitude: bool = False
) -> torch.Tensor:
    """Causal HSTU attention over jagged q, k, v [T, H, dh] (user b owns rows offsets[b]:offsets[b+1]).

    Returns [T, H, dh] in q.dtype; rows at or past offsets[-1] belong to no user and are 0. With
    ``magnitude=True`` returns the fp32 sums of |score|·|v| / (i + 1) instead (see ``allowed_error``).
    """
    rows = offsets.numel() - 1
    total = int(offsets[-1]) if rows > 0 else 0
    out = torch.zeros(q.shape, dtype=torch.float32 if magnitude else q.dtype, device=q.device)
    if total == 0:
        return out
    width = int((offsets[1:] - offsets[:-1]).max())
    user, pos = jagged_positions(offsets, total)
    qp, kp, vp = (_padded(t[:total], user, pos, rows, width) for t in (q, k, v))
    steps = torch.arange(width, device=q.device)
    causal = (steps[None, :] <= steps[:, None]).expand(rows, width, width)
    padded = _attend(qp, kp, vp, causal, (steps + 1).expand(rows, width), magnitude)  # [B, H, S, dh]
    out[:total] = padded.transpose(1, 2)[user, pos].to(out.dtype)
    return out


def hstu_decode_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    history_k: torch.Tensor,
    history_v: torch.Tensor,
    lengths: torch.Tensor,
    *,
    magnitude: bool = False,
) -> torch.Tensor:
    """One new query per user against its history plus itself.

    q, k, v: [B, H, dh], the new token (at position ``lengths[b]``); history_k/v: [B, S, H, dh] padded, of
    which the first ``lengths[b]`` positions are real. Returns [B, H, dh] in q.dtype (fp32 sums of
    |score|·|v| with ``magnitude=True``).
    """
    keys = torch.cat([history_k.float(), k.float().unsqueeze(1)], 1).transpose(1, 2)  # [B, H, S+1, dh]
    values = torch.cat([history_v.float(), v.float().unsqueeze(1)], 1).transpose(1, 2)
    width = history_k.shape[1]
    slots = torch.arange(width + 1, device=q.device)
    # The new token is the last slot; it sees the history positions < length and itself.
    visible = ((slots[None, :] < lengths[:, None]) | (slots[None, :] == width)).unsqueeze(1)
    out = _attend(
        q.float().unsqueeze(2), keys, values, visible, (lengths + 1).view(-1, 1), magnitude
    ).squeeze(2)
    return out if magnitude else out.to(q.dtype)


def allowed_error(want: torch.Tensor, magnitude: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per-element error a kernel in ``dtype`` may make against the fp32 reference ``want``.

    The kernels feed the attention weights to the second matrix product in the input dtype and may compute
    SiLU through tanh.approx (relative error 2^-11); both errors scale with |score| per term, so the bound is
    the dtype's relative tolerance (kernels/tolerances.py) times the sum of |score|·|v| / (i + 1), plus the
    final rounding of the output.
    """
    rtol, _ = TOLERANCES[dtype]
    return rtol * (magnitude + want.float().abs()) + 1e-6


def assert_within_bound(
    got: torch.Tensor, want: torch.Tensor, magnitude: torch.Tensor, what: str = ""
) -> None:
    """Raise AssertionError naming the worst element when |got − want| exceeds ``allowed_error``."""
    if got.shape != want.shape or got.dtype != want.dtype:
        raise AssertionError(
            f"{what} shape/dtype {tuple(got.shape)} {got.dtype} != {tuple(want.shape)} {want.dtype}"
        )
    if not torch.isfinite(got).all():
        raise AssertionError(f"{what} has {int((~torch.isfinite(got)).sum())} non-finite values")
    err = (got.float() - want.float()).abs()
    excess = err - allowed_error(want, magnitude, want.dtype)
    if excess.numel() and float(excess.max()) > 0:
        worst = int(excess.flatten().argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), excess.shape))
        raise AssertionError(
            f"{what} {int((excess > 0).sum())} of {excess.numel()} elements off; worst at {index}: "
            f"got {float(got[index]):.6g}, want {float(want[index]):.6g}, "
            f"allowed {float(allowed_error(want, magnitude, want.dtype)[index]):.3g}"
        )
