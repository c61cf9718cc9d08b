"""The measurement behind the oracle's limits: `python -m genrec_bench.bench.measure_tolerances RUN.json...`.

Reads pytest-benchmark result files and prints, per precision and phase, the largest error, pairing error and
bias and the lowest worst-row agreement measured over the cells that ran, beside the limits of
bench/tolerances.py and the headroom between them. Version 1 records carry only max_rel_err and the pooled
agreement; their other columns are left empty.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from genrec_bench.bench.tolerances import LIMITS

COLUMNS = ("max_rel_err", "pair_rel_err", "bias", "topk_agreement")


def measured(paths: list[str]) -> dict[tuple[str, str], dict]:
    """(precision, phase) → {cells, max of each error column, min agreement, and the cell of each extreme}."""
    table: dict[tuple[str, str], dict] = defaultdict(lambda: {"cells": 0})
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
        for bench in doc.get("benchmarks", []):
            record = bench.get("extra_info") or {}
            if "numerics" not in record:
                continue
            cell, numerics = record["cell"], record["numerics"]
            row = table[(cell["precision"], cell["phase"])]
            row["cells"] += 1
            for column in COLUMNS:
                value = numerics.get(column)
                if value is None:
                    continue
                lowest = column == "topk_agreement"
                best = row.get(column)
                if best is None or (value < best if lowest else value > best):
                    row[column], row[f"{column}_cell"] = value, cell["id"]
    return dict(table)


def format_table(table: dict) -> str:
    lines = [
        "| precision | phase | cells | max_rel_err (limit) | pair_rel_err | bias (limit) | "
        "worst-row agreement (limit) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (precision, phase), row in sorted(table.items()):
        limit = LIMITS.get((precision, phase), {})

        def cell(column, limit_name=None, fmt="{:.2e}", row=row, limit=limit):
            value = row.get(column)
            text = "–" if value is None else fmt.format(value)
            return f"{text} ({fmt.format(limit[limit_name])})" if limit_name and limit_name in limit else text

        lines.append(
            f"| {precision} | {phase} | {row['cells']} | {cell('max_rel_err', 'max_rel_err')} | "
            f"{cell('pair_rel_err')} | {cell('bias', 'max_bias')} | "
            f"{cell('topk_agreement', 'topk_agreement', '{:.2f}')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.bench.measure_tolerances", description=__doc__.split("\n")[0]
    )
    parser.add_argument("results", nargs="+", help="pytest-benchmark JSON files")
    args = parser.parse_args(argv)
    try:
        print(format_table(measured(args.results)))
    except (OSError, ValueError) as exc:
        print(f"measure_tolerances: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
