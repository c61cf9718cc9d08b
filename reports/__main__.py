"""Command line: `python -m reports summary OUT.json [--out FILE]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matrices.errors import HarnessError
from reports.load import load_results
from reports.summary import format_summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports", description="genrec-bench result reports")
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="a table of the cells of a --benchmark-json file")
    summary.add_argument("results", help="pytest-benchmark JSON written with --benchmark-json")
    summary.add_argument("--out", help="also write the table to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        machine, results = load_results(args.results)
        text = format_summary(machine, results)
    except HarnessError as err:
        print(f"reports: {err}", file=sys.stderr)
        return 2
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"summary written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
