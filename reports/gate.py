"""The gate: tonight's run against its machine's history, a verdict per cell and metric plus the oracle.

A cell *regresses* on a metric only if the change exceeds max(min effect, 3 × the series' night-to-night
noise), a one-sided test of tonight's samples against the latest baseline night's gives p < alpha, and that p
survives Benjamini–Hochberg across every cell × metric of the run (bench/stats.py holds the statistics). Fewer
baseline nights than the minimum is `insufficient_data`, never a pass or a fail in disguise. Correctness is
judged apart, without statistics: an oracle verdict that flipped to fail, or an error that grew past the
baseline's tolerance.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from genrec_bench.bench import stats
from genrec_bench.reports.acknowledgements import Acknowledgement
from genrec_bench.reports.fingerprint import hardware_differences, kernel_id, software_changes
from genrec_bench.reports.history import Run
from genrec_bench.reports.metrics import CELL_METRICS, KERNEL_METRICS, Metric, oracle_state

MANN_WHITNEY = "Mann–Whitney U, tonight's samples against the latest baseline night's"
SIGN_TEST = "sign test against the latest baseline night's median (that record kept no samples: schema v1)"
NORMAL_TAIL = "normal tail of the change over the series' noise (one reading a night)"
DEFAULTS = stats.GateSettings()
EXIT_MEANINGS = {
    0: "pass",
    1: "performance regression",
    2: "correctness regression",
    3: "no comparable baseline (--strict)",
    4: "usage or input error",
}


@dataclass
class Verdict:
    """One cell × metric. `change` is tonight against the baseline median (+0.1 = 10 % higher); `worse` the
    same in the metric's bad direction."""

    series: str
    cell: str
    metric: str
    unit: str
    verdict: str
    tonight: float | None = None
    baseline: float | None = None
    change: float | None = None
    worse: float | None = None
    threshold: float | None = None
    noise: float | None = None
    p: float | None = None
    p_better: float | None = None
    q: float | None = None
    points: int = 0
    test: str = ""
    reason: str = ""
    acknowledged: str | None = None


@dataclass
class OracleVerdict:
    series: str
    cell: str
    verdict: str  # ok, correctness_regression, failing, fixed, new
    message: str
    acknowledged: str | None = None


@dataclass
class GateResult:
    tonight: Run
    baseline: list[Run]
    settings: stats.GateSettings
    verdicts: list[Verdict] = field(default_factory=list)
    oracle: list[OracleVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def exit_code(self, strict: bool = False) -> int:
        """2 correctness regression, 1 performance regression, 3 nothing comparable (only when strict), else
        0."""
        if any(o.verdict == "correctness_regression" and not o.acknowledged for o in self.oracle):
            return 2
        if any(v.verdict == "regression" and not v.acknowledged for v in self.verdicts):
            return 1
        if strict and not self.comparable:
            return 3
        return 0

    @property
    def comparable(self) -> bool:
        return any(v.verdict != "insufficient_data" for v in self.verdicts)

    def as_dict(self, strict: bool = False) -> dict:
        code = self.exit_code(strict)
        return {
            "exit_code": code,
            "meaning": EXIT_MEANINGS[code],
            "tonight": {
                "id": self.tonight.id,
                "time": self.tonight.time,
                "commit": self.tonight.commit,
                "source": self.tonight.source,
                "machine": self.tonight.machine,
                "hardware": self.tonight.hardware,
                "software": self.tonight.software,
            },
            "baseline_runs": [{"id": r.id, "time": r.time, "source": r.source} for r in self.baseline],
            "settings": asdict(self.settings),
            "notes": self.notes,
            "verdicts": [asdict(v) for v in self.verdicts],
            "oracle": [asdict(o) for o in self.oracle],
        }


def baseline_runs(tonight: Run, runs: list[Run]) -> tuple[list[Run], list[str]]:
    """The runs that can be tonight's baseline: earlier, not tonight itself, on comparable hardware."""
    usable, notes = [], []
    for run in runs:
        if run.id == tonight.id or run.time > tonight.time:
            continue
        diff = hardware_differences(run.hardware, tonight.hardware)
        if diff:
            notes.append(f"{run.source} ({run.time}) is not comparable: {'; '.join(diff)}")
        else:
            usable.append(run)
    return usable, notes


def _assess(
    series: str, cell: str, record: dict, points: list[dict], metric: Metric, settings: stats.GateSettings
) -> Verdict:
    verdict = Verdict(
        series, cell, metric.name, metric.unit, "insufficient_data", tonight=metric.value(record)
    )
    values = [v for p in points if (v := metric.value(p)) is not None and v > 0]
    verdict.points = len(values)
    if verdict.tonight is None:
        verdict.reason = "not measured tonight"
        return verdict
    if len(values) < settings.min_points:
        verdict.reason = (
            f"{len(values)} baseline night(s) of this series; the gate needs {settings.min_points}"
        )
        return verdict
    verdict.baseline = float(np.median(values))
    verdict.change = float(stats.relative_change(verdict.tonight, values))
    verdict.noise = float(stats.relative_noise(values))
    sign = 1 if metric.worse_if_higher else -1
    if metric.samples is None:
        verdict.test = NORMAL_TAIL
        verdict.p = float(
            stats.level_pvalue(verdict.change, verdict.noise, worse_if_higher=metric.worse_if_higher)
        )
        verdict.p_better = float(
            stats.level_pvalue(verdict.change, verdict.noise, worse_if_higher=not metric.worse_if_higher)
        )
    else:
        samples, latest = metric.samples(record), points[-1]
        if not samples:
            verdict.reason = "tonight's record has no raw samples (schema v1): nothing to test"
            return verdict
        before = metric.samples(latest)
        if before:
            verdict.test = MANN_WHITNEY
            got = stats.assess_samples(
                verdict.tonight, samples, values, before, settings, worse_if_higher=metric.worse_if_higher
            )
            # Every sample equal on both sides gives no ranks to compare (NaN): no evidence of a shift.
            verdict.p, verdict.p_better = (
                float(np.nan_to_num(got[k], nan=1.0)) for k in ("p_worse", "p_better")
            )
        else:
            verdict.test = SIGN_TEST
            worse, better = ("greater", "less") if metric.worse_if_higher else ("less", "greater")
            verdict.p = stats.sign_test_pvalue(samples, metric.value(latest), alternative=worse)
            verdict.p_better = stats.sign_test_pvalue(samples, metric.value(latest), alternative=better)
    verdict.worse = sign * verdict.change
    verdict.threshold = float(stats.change_threshold(verdict.noise, settings))
    return verdict


def _past_tolerance(now: dict, before: dict) -> str | None:
    """An error tonight beyond the tolerance the baseline was held to, where the baseline's was within it (so
    loosening the tolerance does not hide a worse answer)."""
    tol = before["tolerance"]
    for name in ("max_abs_err", "max_rel_err"):
        limit, got, had = tol.get(name), now["errors"].get(name), before["errors"].get(name)
        if limit is not None and got is not None and got > limit and (had is None or had <= limit):
            return (
                f"{name} {got:.2e} grew past the baseline's tolerance {limit:.2e} (was {had:.2e})"
                if had is not None
                else f"{name} {got:.2e} grew past the baseline's tolerance {limit:.2e}"
            )
    limit, got, had = (
        tol.get("topk_agreement"),
        now["errors"].get("topk_agreement"),
        before["errors"].get("topk_agreement"),
    )
    if limit is not None and got is not None and got < limit and (had is None or had >= limit):
        return f"topk_agreement {got:.3f} fell below the baseline's tolerance {limit:.3f}"
    return None


def _oracle(series: str, cell: str, record: dict, latest: dict | None) -> OracleVerdict:
    now = oracle_state(record)
    if latest is None:
        return OracleVerdict(series, cell, "new" if now["passed"] else "failing", now["message"])
    before = oracle_state(latest)
    if before["passed"] and not now["passed"]:
        return OracleVerdict(
            series, cell, "correctness_regression", f"oracle flipped to fail: {now['message']}"
        )
    grown = _past_tolerance(now, before)
    if grown:
        return OracleVerdict(series, cell, "correctness_regression", grown)
    if not now["passed"]:
        return OracleVerdict(series, cell, "failing", f"failing as before: {now['message']}")
    return OracleVerdict(series, cell, "fixed" if not before["passed"] else "ok", now["message"])


def _acknowledge(result: GateResult, acks: list[Acknowledgement]) -> None:
    on = datetime.date.fromisoformat(result.tonight.time[:10])
    for ack in acks:
        if on > ack.expires:
            result.notes.append(
                f"acknowledgement {ack.where} ({ack.cell} {ack.metric}) expired on {ack.expires}; "
                f"the gate acts on it again"
            )
    for item in [*result.verdicts, *result.oracle]:
        if item.verdict in ("regression", "suspect", "correctness_regression"):
            metric = getattr(item, "metric", "oracle")
            ack = next((a for a in acks if a.applies(item.cell, metric, on)), None)
            item.acknowledged = ack.reason if ack else None


def judge(
    tonight: Run,
    baseline: list[Run],
    settings: stats.GateSettings = DEFAULTS,
    acks: list[Acknowledgement] = (),
) -> GateResult:
    """Verdicts of every cell and kernel record of `tonight` against `baseline` (oldest first)."""
    result = GateResult(tonight, baseline, settings)
    if baseline:
        changed = [c for c in software_changes(baseline[-1].software, tonight.software)]
        if changed:
            result.notes.append(
                "software changed since the latest baseline run (a marker, not a new series): "
                + ", ".join(changed)
            )
    for kind, metrics in (("cells", CELL_METRICS), ("kernels", KERNEL_METRICS)):
        for series, record in getattr(tonight, kind).items():
            points = [getattr(run, kind)[series] for run in baseline if series in getattr(run, kind)]
            points = points[-settings.window :]
            cell = record["cell"]["id"] if kind == "cells" else kernel_id(record)
            result.verdicts += [_assess(series, cell, record, points, m, settings) for m in metrics]
            result.oracle.append(_oracle(series, cell, record, points[-1] if points else None))
    tested = [v for v in result.verdicts if v.p is not None]
    if tested:
        q = stats.fdr_adjust([v.p for v in tested])
        labels = stats.classify(
            [v.worse for v in tested],
            [v.threshold for v in tested],
            [v.p for v in tested],
            q,
            [v.p_better for v in tested],
            settings.alpha,
        )
        for v, qv, label in zip(tested, q, labels):
            v.q, v.verdict = float(qv), str(label)
    _acknowledge(result, list(acks))
    return result


def compare_runs(
    a: Run, b: Run, settings: stats.GateSettings = DEFAULTS, acks: list[Acknowledgement] = ()
) -> GateResult:
    """B against A alone: one baseline night, so no noise estimate; the threshold is the minimum effect."""
    one_night = replace(settings, window=1, min_points=1)
    diff = hardware_differences(a.hardware, b.hardware)
    result = judge(b, [] if diff else [a], one_night, acks)
    if diff:
        result.notes.append(
            f"{a.source} and {b.source} ran on different hardware ({'; '.join(diff)}): nothing to compare"
        )
    return result
