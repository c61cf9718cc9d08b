"""Command line: `python -m reports summary OUT.json [--out FILE]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genrec_bench.matrices.errors import HarnessError
from genrec_bench.reports.load import load_results
from genrec_bench.reports.pivot import METRICS, pivot
from genrec_bench.reports.summary import format_summary

AXES = ("model", "backend", "mode", "precision", "batch", "seq_len", "phase", "kernel")


def _axes(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    unknown = [a for a in names if a not in AXES]
    if unknown or not names:
        raise SystemExit(f"reports: --rows/--cols take cell axes from {', '.join(AXES)}; got {text!r}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports", description="genrec-bench result reports")
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="a table of the cells of a --benchmark-json file")
    summary.add_argument("results", help="pytest-benchmark JSON written with --benchmark-json")
    summary.add_argument("--out", help="also write the table to this file")
    summary.add_argument("--no-validate", action="store_true", help="skip the record schema check")
    table = sub.add_parser("pivot", help="a Markdown table of one metric, pivoted by cell axes")
    table.add_argument("results", nargs="+", help="one or more --benchmark-json files (read together)")
    table.add_argument("--rows", default="model,phase,batch", help="cell axes down the side (comma-separated)")
    table.add_argument("--cols", default="backend,mode,precision", help="cell axes across the top")
    table.add_argument("--metric", default="p50", choices=sorted(METRICS))
    table.add_argument("--no-validate", action="store_true", help="skip the record schema check")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "pivot":
            results = [r for path in args.results for r in load_results(path, validate=not args.no_validate)[1]]
            text = pivot(results, rows=_axes(args.rows), cols=_axes(args.cols), metric=args.metric)
        else:
            machine, results = load_results(args.results, validate=not args.no_validate)
            text = format_summary(machine, results)
    except HarnessError as err:
        print(f"reports: {err}", file=sys.stderr)
        return 2
    print(text)
    if getattr(args, "out", None):
        Path(args.out).write_text(text + "\n")
        print(f"summary written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
