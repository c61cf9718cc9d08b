"""The oracle's looks at a prepared session beyond its first call, each outside the timed interval.

- every call: each warm-up call's and timed round's output is judged against the reference right after it
  (pytest-benchmark's teardown for timed rounds), so garbage on the second call, or a buffer that goes stale
  after many replays, fails.
  Every round rather than a sample: one fetch of [B, k] and a comparison cost far less than the idle gap a
  synchronised round leaves anyway, and a sample would miss a bug that hits one call in n.
- a second input set of the same shape through the same session, against its own reference: a session that
  returns its first answer forever (a cache, a stale graph buffer, a server answering the previous request)
  passes every timed round and fails here.
- checks that need no second implementation, so a bug in model code the reference shares is caught too:
  decode's answer equals the reference's prefill of the longer history; the answer does not change when the
  padding ids (positions at or past a user's length) hold random real items instead of 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genrec_bench.bench.oracle import Numerics, compare, worst
from genrec_bench.bench.reference_model import longer_history, noisy_padding, reference

SECOND_INPUT_SEED_OFFSET = 1
PADDING_SEED = 4242


class RoundChecks:
    """`after_round` of the timing: judges each call's output (warm-up and timed) and keeps the first
    failure."""

    def __init__(self, session, ref, limits: dict):
        self.session, self.ref, self.limits = session, ref, limits
        self.calls = 1  # the first call, judged before the timing
        self.failure: tuple[int, Numerics] | None = None

    def __call__(self, result: Any) -> None:
        self.calls += 1
        if self.failure is None:
            verdict = compare(self.ref, *self.session.fetch(result), self.limits)
            if not verdict.passed:
                self.failure = (self.calls, verdict)

    def fold(self, numerics: Numerics) -> Numerics:
        if self.failure is None:
            return numerics
        call, verdict = self.failure
        return worst(numerics, verdict, f"call {call} of {self.calls}")


def _run_once(session, drawn: dict):
    """The session's answer to `drawn` (a session that varies its inputs answers its runner's own once
    more)."""
    run = session.runner(drawn)
    result = session.oracle_result(run())
    session.synchronize()
    return session.fetch(result)


def independent_checks(
    session,
    cell,
    cfg,
    drawn: dict,
    first: tuple,
    numerics: Numerics,
    limits: dict,
    draw: Callable,
    input_seed: int,
) -> tuple[Numerics, list[str]]:
    """Run the second input set, decode-versus-prefill and randomised padding; fold their verdicts into
    `numerics` and say which checks ran (or why one does not apply)."""
    ran = []
    second = draw(cfg, cell.phase, cell.batch, cell.seq_len, seed=input_seed + SECOND_INPUT_SEED_OFFSET)
    numerics = worst(
        numerics,
        compare(reference(cell.model, cell.phase, second), *_run_once(session, second), limits),
        f"a second input set (seed {input_seed + SECOND_INPUT_SEED_OFFSET})",
    )
    ran.append(
        f"a second input set of the same shape (seed {input_seed + SECOND_INPUT_SEED_OFFSET}) against its "
        f"own reference"
    )
    if cell.phase == "decode":
        longer = reference(cell.model, "prefill", longer_history(drawn))
        numerics = worst(
            numerics, compare(longer, *first, limits), "decode against prefill of the longer history"
        )
        ran.append(
            "decode's answer against the reference's prefill of the history with the new item appended"
        )
    if getattr(session, "pads_with_lengths", True):
        noisy = noisy_padding(drawn, cfg.num_items, PADDING_SEED)
        ref = reference(cell.model, cell.phase, drawn)
        numerics = worst(
            numerics, compare(ref, *_run_once(session, noisy), limits), "random ids in the padding"
        )
        ran.append(
            "the same users with random item ids in every padding position, against the clean reference"
        )
    else:
        ran.append("padding not randomised: this session's requests mark padding by id 0 (raw histories)")
    return numerics, ran
