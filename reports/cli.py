"""`python -m reports COMMAND ...`: summary, pivot, history, gate, compare, dashboard.

Exit codes: 0 pass, 1 performance regression, 2 correctness regression, 3 no comparable baseline (gate and
compare with --strict), 4 usage or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genrec_bench.bench.stats import GateSettings
from genrec_bench.matrices.errors import HarnessError, ResultsError

USAGE_ERROR = 4
AXES = ("model", "backend", "mode", "precision", "batch", "seq_len", "phase", "kernel")


class UsageError(Exception):
    """A command line mistake: one line, exit 4."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage block and exit 2; CI reads 4 as "usage"
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _axes(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    if not names or any(a not in AXES for a in names):
        raise UsageError(f"reports: --rows/--cols take cell axes from {', '.join(AXES)}; got {text!r}")
    return names


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", action="store_true", help="exit 3 when nothing had a comparable baseline")
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="also write the report to FILE and the verdicts to FILE's name with .json (folders are created)",
    )
    parser.add_argument("--all", action="store_true", help="list every verdict, not only the findings")
    _gate_options(parser)


def _gate_options(parser: argparse.ArgumentParser) -> None:
    d = GateSettings()
    parser.add_argument(
        "--alpha", type=float, default=d.alpha, help=f"significance level (default {d.alpha})"
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=d.min_effect,
        help=f"smallest relative change acted on (default {d.min_effect})",
    )
    parser.add_argument(
        "--noise-factor",
        type=float,
        default=d.noise_factor,
        help=f"threshold = max(min effect, this × night-to-night noise) (default {d.noise_factor})",
    )
    parser.add_argument(
        "--window", type=int, default=d.window, help=f"baseline nights used (default {d.window})"
    )
    parser.add_argument(
        "--min-points",
        type=int,
        default=d.min_points,
        help=f"baseline nights needed for a verdict (default {d.min_points})",
    )
    parser.add_argument(
        "--acknowledgements",
        metavar="FILE",
        default=None,
        help="known changes not to fail on (default reports/acknowledgements.yaml)",
    )
    parser.add_argument("--no-validate", action="store_true", help="skip the record schema check")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reports", description="genrec-bench result reports")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    summary = sub.add_parser("summary", help="a table of the cells of a --benchmark-json file")
    summary.add_argument("results", help="pytest-benchmark JSON written with --benchmark-json")
    summary.add_argument("--out", help="also write the table to this file (its folder is created)")
    summary.add_argument("--no-validate", action="store_true", help="skip the record schema check")
    table = sub.add_parser("pivot", help="a Markdown table of one metric, pivoted by cell axes")
    table.add_argument("results", nargs="+", help="one or more --benchmark-json files (read together)")
    table.add_argument(
        "--rows", default="model,phase,batch", help="cell axes down the side (comma-separated)"
    )
    table.add_argument("--cols", default="backend,mode,precision", help="cell axes across the top")
    from genrec_bench.reports.pivot import METRICS

    table.add_argument("--metric", default="p50", choices=sorted(METRICS))
    table.add_argument("--no-validate", action="store_true", help="skip the record schema check")

    history = sub.add_parser("history", help="the history store: add runs, import the baselines, list")
    hsub = history.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = hsub.add_parser("add", help="add runs (pytest-benchmark or kernel micro-benchmark JSON)")
    add.add_argument("runs", nargs="+", metavar="RUN.json")
    imp = hsub.add_parser("import-baselines", help="add a machine's committed baselines (its first night)")
    from genrec_bench.reports.history import BASELINES

    imp.add_argument("--from", dest="folder", default=str(BASELINES), help=f"(default {BASELINES})")
    listing = hsub.add_parser("list", help="the machines and runs of a store")
    for p in (add, imp, listing):
        p.add_argument("--history", required=True, metavar="DIR", help="the store (created when adding)")
        p.add_argument("--no-validate", action="store_true", help="skip the record schema check")

    gate = sub.add_parser(
        "gate", help="tonight's run against its machine's history: verdicts and an exit code"
    )
    gate.add_argument("run", metavar="RUN.json")
    gate.add_argument("--history", required=True, metavar="DIR")
    _report_options(gate)
    compare = sub.add_parser("compare", help="run B against run A (A is the baseline)")
    compare.add_argument("a", metavar="A.json")
    compare.add_argument("b", metavar="B.json")
    _report_options(compare)

    dash = sub.add_parser("dashboard", help="one self-contained HTML page from a history")
    dash.add_argument("--history", required=True, metavar="DIR")
    dash.add_argument("--out", required=True, metavar="SITE", help="folder for index.html (created)")
    _gate_options(dash)
    return parser


def _warn(lines) -> None:
    for line in lines:
        print(f"reports: {line}", file=sys.stderr)


def _emit(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # The reader went away (`| head`): stop writing quietly, as Unix tools do; the exit code stays ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _settings(args) -> GateSettings:
    try:
        return GateSettings(
            alpha=args.alpha,
            min_effect=args.min_effect,
            noise_factor=args.noise_factor,
            window=args.window,
            min_points=args.min_points,
        )
    except ValueError as exc:
        raise UsageError(f"reports {args.command}: {exc}") from None


def _acks(args):
    from genrec_bench.reports.acknowledgements import DEFAULT, load_acknowledgements

    return load_acknowledgements(args.acknowledgements or DEFAULT)


def _report(args, result) -> int:
    from genrec_bench.reports.verdicts import format_gate, write_outputs

    text = format_gate(result, strict=args.strict, show_all=args.all)
    if args.out:
        _, data = write_outputs(result, text, args.out, strict=args.strict)
        text += f"\nreport written to {args.out}, verdicts to {data}"
    _emit(text)
    return result.exit_code(args.strict)


def _gate(args) -> int:
    from genrec_bench.reports.gate import baseline_runs, judge
    from genrec_bench.reports.history import read_history, read_run

    settings, acks = _settings(args), _acks(args)
    tonight = read_run(args.run, validate=not args.no_validate)
    _warn(tonight.problems)
    history = read_history(args.history)
    _warn(history.problems)
    runs = history.of_machine(tonight.machine)
    baseline, notes = baseline_runs(tonight, runs)
    if not runs:
        notes.insert(
            0,
            f"no runs of {tonight.machine} in {args.history} (it holds: "
            f"{', '.join(history.machines()) or 'nothing'}): no comparable baseline",
        )
    result = judge(tonight, baseline, settings, acks)
    result.notes[:0] = notes
    return _report(args, result)


def _compare(args) -> int:
    from genrec_bench.reports.gate import compare_runs
    from genrec_bench.reports.history import read_run

    settings, acks = _settings(args), _acks(args)
    a, b = (read_run(p, validate=not args.no_validate) for p in (args.a, args.b))
    _warn(a.problems + b.problems)
    return _report(args, compare_runs(a, b, settings, acks))


def _history(args) -> int:
    from genrec_bench.reports import history as store

    if args.action == "list":
        found = store.read_history(args.history)
        _warn(found.problems)
        lines = []
        for machine in found.machines():
            runs = found.of_machine(machine)
            lines.append(f"{machine}: {len(runs)} run(s)")
            lines += [
                f"  {r.time}  {r.id}  {r.source}: {len(r.cells)} cells, {len(r.kernels)} kernel records"
                for r in runs
            ]
        _emit("\n".join(lines) or f"{args.history}: empty")
        return 0
    paths = store.baseline_files(args.folder) if args.action == "import-baselines" else args.runs
    lines = []
    for path in paths:
        run = store.read_run(str(path), validate=not args.no_validate)
        _warn(run.problems)
        target, added = store.add(args.history, run)
        lines.append(
            f"{'added' if added else 'already there'}: {path} → {target} "
            f"({len(run.cells)} cells, {len(run.kernels)} kernel records)"
        )
    _emit("\n".join(lines))
    return 0


def _summary_or_pivot(args) -> int:
    from genrec_bench.reports.load import load_results

    loaded = [
        load_results(p, validate=not args.no_validate)
        for p in (args.results if args.command == "pivot" else [args.results])
    ]
    _warn([problem for _, _, problems in loaded for problem in problems])
    results = [r for _, rs, _ in loaded for r in rs]
    if not results:
        raise ResultsError(
            f"{', '.join(args.results) if args.command == 'pivot' else args.results}: "
            f"no valid cell records to report"
        )
    if args.command == "pivot":
        from genrec_bench.reports.pivot import pivot

        _emit(pivot(results, rows=_axes(args.rows), cols=_axes(args.cols), metric=args.metric))
        return 0
    from genrec_bench.reports.summary import format_summary

    text = format_summary(loaded[0][0], results)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    _emit(text + (f"\nsummary written to {args.out}" if args.out else ""))
    return 0


def _dashboard(args) -> int:
    from genrec_bench.reports.dashboard import build

    index = build(args.history, args.out, _settings(args), _acks(args))
    _emit(f"dashboard written to {index}")
    return 0


COMMANDS = {
    "summary": _summary_or_pivot,
    "pivot": _summary_or_pivot,
    "history": _history,
    "gate": _gate,
    "compare": _compare,
    "dashboard": _dashboard,
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; user mistakes and unreadable input are one line on stderr and exit code 4."""
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(err, file=sys.stderr)
    except HarnessError as err:
        print(f"reports: {err}", file=sys.stderr)
    except OSError as err:  # e.g. --out into a folder we may not write
        print(f"reports: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
    return USAGE_ERROR
