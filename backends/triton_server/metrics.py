"""The server's own account: the statistics extension (where a request's time went) and Prometheus metrics
(how many requests each execution batched). Pure functions over snapshots, plus the two readers.

Statistics extension (tritonclient's `get_inference_statistics`): cumulative counts and nanoseconds per
model — success, queue, compute_input, compute_infer, compute_output — and inference_count / execution_count.
A measurement takes a snapshot before and after and reports the difference per request, in microseconds.
Prometheus (`/metrics`, parsed with prometheus_client's parser): `nv_inference_count` (each batch element
counted) and `nv_inference_exec_count` (executions); their ratio over a window is the achieved batch size.
"""

from __future__ import annotations

import urllib.request

SPLIT = ("queue", "compute_input", "compute_infer", "compute_output")


# ----------------------------------------------------------------------------------------------- statistics


def model_stats(control, names) -> dict[str, dict]:
    """Snapshot of the statistics extension for `names` (through a ServerControl): name → {count,
    inference_count, execution_count, queue_ns, compute_input_ns, compute_infer_ns, compute_output_ns,
    success_ns}."""
    return {name: parse_model_stats(control.statistics(name), name) for name in names}


def parse_model_stats(doc: dict, name: str) -> dict:
    """One model's numbers from the extension's JSON (all versions summed)."""
    out = {"count": 0, "inference_count": 0, "execution_count": 0, "success_ns": 0}
    out.update({f"{key}_ns": 0 for key in SPLIT})
    entries = [m for m in doc.get("model_stats", []) if m.get("name") == name]
    if not entries:
        raise ValueError(f"triton | the statistics extension has no entry for model {name!r}")
    for entry in entries:
        stats = entry.get("inference_stats", {})
        out["count"] += int(stats.get("success", {}).get("count", 0))
        out["success_ns"] += int(stats.get("success", {}).get("ns", 0))
        for key in SPLIT:
            out[f"{key}_ns"] += int(stats.get(key, {}).get("ns", 0))
        out["inference_count"] += int(entry.get("inference_count", 0))
        out["execution_count"] += int(entry.get("execution_count", 0))
    return out


def stats_delta(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict]:
    """Per model over the window: requests, executions, mean batch, and the mean µs a request spent in the
    queue and in compute input / infer / output (the server's own split)."""
    out = {}
    for name, end in after.items():
        start = before.get(name, {k: 0 for k in end})
        d = {k: end[k] - start[k] for k in end}
        n = d["count"]
        out[name] = {
            "requests": n,
            "inferences": d["inference_count"],
            "executions": d["execution_count"],
            "mean_batch": d["inference_count"] / d["execution_count"] if d["execution_count"] else None,
            "request_us": d["success_ns"] / n / 1e3 if n else None,
            **{f"{key}_us": d[f"{key}_ns"] / n / 1e3 if n else None for key in SPLIT},
        }
    return out


# ----------------------------------------------------------------------------------------------- prometheus


def parse_prometheus(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text exposition → {(sample name, ((label, value), ...)): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                # The parser names a counter's samples `<family>_total` (OpenMetrics); Triton's names are the
                # family's own (`nv_inference_count`), so keep those.
                name = family.name if sample.name == f"{family.name}_total" else sample.name
                out[(name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    except ValueError as exc:
        raise ValueError(f"triton | not a Prometheus exposition: {exc}") from None
    return out


def scrape(metrics_url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(metrics_url, timeout=5.0) as resp:
        return parse_prometheus(resp.read().decode())


def metric(samples: dict, name: str, model: str) -> float:
    """Sum of `name` over every version of `model`."""
    return sum(v for (n, labels), v in samples.items() if n == name and ("model", model) in labels)


def achieved_batch(before: dict, after: dict, model: str) -> dict:
    """Δnv_inference_count / Δnv_inference_exec_count of `model` between two scrapes."""
    inferences = metric(after, "nv_inference_count", model) - metric(before, "nv_inference_count", model)
    executions = metric(after, "nv_inference_exec_count", model) - metric(
        before, "nv_inference_exec_count", model
    )
    return {
        "nv_inference_count": inferences,
        "nv_inference_exec_count": executions,
        "batch": inferences / executions if executions else None,
    }
