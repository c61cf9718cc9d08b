"""`python -m reports summary OUT.json`: one readable line per cell."""

from __future__ import annotations

from genrec_bench.reports.load import Result
from genrec_bench.reports.metrics import peak_mb

COLUMNS = ("cell", "p50 ms", "p90 ms", "p99 ms", "seq/s", "peak MiB", "rel err", "top-k", "oracle")


def _peak(record: dict) -> str:
    value = peak_mb(record)
    return f"{value:,.0f}" if value is not None else "-"


def _row(result: Result) -> tuple[str, ...]:
    r = result.record
    lat, num = r["latency_ms"], r["numerics"]
    rel = num.get("max_rel_err")
    return (
        r["cell"]["id"],
        f"{lat['p50']:.3f}",
        f"{lat['p90']:.3f}",
        f"{lat['p99']:.3f}",
        f"{r['throughput']['sequences_per_s']:,.0f}",
        _peak(r),
        "-" if rel is None else f"{rel:.1e}",
        f"{num['topk_agreement']:.2f}",
        "ok" if num["passed"] else "FAIL",
    )


def format_summary(machine_info: dict, results: list[Result]) -> str:
    """The table as text, widest cell first column, with a header naming the device."""
    rows = [_row(r) for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    devices = sorted({r.record["env"]["device_name"] for r in results})
    failed = sum(1 for r in results if not r.record["numerics"]["passed"])
    out = [
        f"{len(results)} cells on {', '.join(devices) or 'no device'}"
        + (f" — {failed} outside the oracle's tolerance" if failed else ""),
        line(COLUMNS),
        line(tuple("-" * w for w in widths)),
    ]
    out += [line(row) for row in rows]
    return "\n".join(out)
