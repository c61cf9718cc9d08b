"""`python -m reports pivot OUT.json...`: a Markdown table of one metric, cells pivoted by chosen axes.

Rows and columns are tuples of cell axes (e.g. rows model,phase,batch; columns backend,mode,precision), so a
nightly run reads as "which way of running wins at which shape".
"""

from __future__ import annotations

from genrec_bench.reports.load import Result

METRICS = {
    "p50": lambda r: r["latency_ms"]["p50"],
    "p99": lambda r: r["latency_ms"]["p99"],
    "throughput": lambda r: r["throughput"]["sequences_per_s"],
    "rel_err": lambda r: r["numerics"]["max_rel_err"],
    # What the cell itself added on the device (NVML peak over the reading at its start), or host RSS on CPU.
    "device_delta_mb": lambda r: _delta(r["memory"]),
    "torch_alloc_mb": lambda r: r["memory"]["torch_max_allocated_mb"],
}
FORMATS = {
    "p50": "{:.3f}",
    "p99": "{:.3f}",
    "throughput": "{:,.0f}",
    "rel_err": "{:.1e}",
    "device_delta_mb": "{:,.0f}",
    "torch_alloc_mb": "{:,.0f}",
}


def _delta(memory: dict):
    if memory.get("device_used_peak_mb") is None:
        return memory["host_peak_rss_mb"] - memory.get("host_rss_start_mb", 0)
    return memory["device_used_peak_mb"] - (memory.get("device_used_start_mb") or 0)


def _label(cell: dict, axes: tuple[str, ...]) -> tuple:
    return tuple(cell[a] for a in axes)


def pivot(results: list[Result], *, rows: tuple[str, ...], cols: tuple[str, ...], metric: str) -> str:
    """Markdown table; a cell outside the oracle's tolerance is marked with ✗, a missing one with –."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not one of {', '.join(METRICS)}")
    table: dict[tuple, dict[tuple, str]] = {}
    col_keys: list[tuple] = []
    for result in results:
        cell = result.record["cell"]
        row, col = _label(cell, rows), _label(cell, cols)
        value = METRICS[metric](result.record)
        text = "–" if value is None else FORMATS[metric].format(value)
        if not result.record["numerics"]["passed"]:
            text += " ✗"
        table.setdefault(row, {})[col] = text
        if col not in col_keys:
            col_keys.append(col)
    header = ["/".join(rows)] + [" ".join(str(v) for v in col) for col in col_keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, values in table.items():
        lines.append(
            "| "
            + " ".join(str(v) for v in row)
            + " | "
            + " | ".join(values.get(col, "–") for col in col_keys)
            + " |"
        )
    return "\n".join(lines)
