"""The gate's verdicts as text (one line per finding, a summary, the exit code) and as the JSON beside it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from genrec_bench.reports.gate import EXIT_MEANINGS, GateResult, OracleVerdict, Verdict

ORDER = {
    "regression": 0,
    "correctness_regression": 0,
    "suspect": 1,
    "failing": 2,
    "improvement": 3,
    "fixed": 3,
    "insufficient_data": 4,
    "new": 5,
    "ok": 6,
}


def ratio_text(v: Verdict) -> str:
    """`+12.3% (×1.123)`: the change against the baseline median and the ratio."""
    if v.change is None:
        return ""
    return f"{100 * v.change:+.1f}% (×{1 + v.change:.3f})"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def verdict_line(v: Verdict) -> str:
    label = v.verdict.upper() if v.verdict in ("regression", "suspect") else v.verdict
    head = f"{label:<17} {v.cell}  {v.metric}"
    if v.change is None:
        return f"{head}  {v.reason}"
    # The p-value of the direction the verdict is about: getting better for an improvement, worse otherwise.
    p = (
        f"p={v.p_better:.2g}"
        if v.verdict == "improvement"
        else f"p={v.p:.2g}" + ("" if v.q is None else f", q={v.q:.2g}")
    )
    text = (
        f"{head}  {_num(v.baseline)} → {_num(v.tonight)} {v.unit}  {ratio_text(v)}, threshold "
        f"{100 * v.threshold:.1f}%, {p}, {v.points} night(s)"
    )
    return text + (f"  [acknowledged: {v.acknowledged}]" if v.acknowledged else "")


def oracle_line(o: OracleVerdict) -> str:
    label = "CORRECTNESS" if o.verdict == "correctness_regression" else f"oracle {o.verdict}"
    return f"{label:<17} {o.cell}  {o.message}" + (
        f"  [acknowledged: {o.acknowledged}]" if o.acknowledged else ""
    )


def format_gate(result: GateResult, *, strict: bool = False, show_all: bool = False) -> str:
    """The gate's report: header, notes, one line per finding (every line with `show_all`), summary, exit."""
    t = result.tonight
    out = [
        f"gate: {t.source} ({t.time}"
        + (f", commit {t.commit[:12]}" if t.commit else "")
        + f") on {t.machine} "
        f"against {len(result.baseline)} earlier run(s)"
    ]
    out += [f"note: {n}" for n in result.notes]
    shown_verdicts = sorted(
        (v for v in result.verdicts if show_all or v.verdict not in ("ok", "insufficient_data")),
        key=lambda v: (ORDER[v.verdict], -abs(v.change or 0)),
    )
    shown_oracle = [o for o in result.oracle if show_all or o.verdict not in ("ok", "new")]
    out += [oracle_line(o) for o in sorted(shown_oracle, key=lambda o: ORDER[o.verdict])]
    out += [verdict_line(v) for v in shown_verdicts]
    counts = Counter(v.verdict for v in result.verdicts)
    oracle = Counter(o.verdict for o in result.oracle)
    series = len({v.series for v in result.verdicts})
    out.append(
        f"summary: {series} series, {len(result.verdicts)} cell × metric verdicts: "
        + ", ".join(f"{counts[k]} {k}" for k in sorted(counts, key=ORDER.get))
        + "; oracle: "
        + ", ".join(f"{oracle[k]} {k}" for k in sorted(oracle, key=ORDER.get))
    )
    if counts.get("insufficient_data") and not show_all:
        out.append(
            "(insufficient_data: fewer baseline nights than --min-points, or no samples; --all lists them)"
        )
    code = result.exit_code(strict)
    out.append(f"exit {code}: {EXIT_MEANINGS[code]}")
    return "\n".join(out)


def write_outputs(result: GateResult, text: str, out: str, *, strict: bool) -> tuple[Path, Path]:
    """The text at `out` and the machine-readable verdicts beside it (same name, .json)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    data = path.with_suffix(".json") if path.suffix != ".json" else path.with_suffix(".verdicts.json")
    data.write_text(json.dumps(result.as_dict(strict), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path, data
