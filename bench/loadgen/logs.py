"""LoadGen's own logs → the record's `scenario.result`: validity and why, throughput, latency percentiles and
early-stopping estimates, as LoadGen computed them (nothing here is recomputed).

mlperf_log_detail.txt holds one `:::MLLOG {json}` line per fact (key, value, metadata.is_error/is_warning);
the last value of a key wins. mlperf_log_summary.txt is the human summary; its `Result is :` line must agree
with the detail log's `result_validity`, and its recommendations are kept as written.
"""

from __future__ import annotations

import json
from pathlib import Path

from genrec_bench.matrices.errors import BackendError

PREFIX = ":::MLLOG "
SUMMARY, DETAIL, ACCURACY = "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
# What LoadGen's result flags mean when false: the reason a reader sees.
CONSTRAINTS = {
    "result_perf_constraints_met": "latency bound not met at the target percentile",
    "result_min_duration_met": "min duration not met",
    "result_min_queries_met": "min query count not met",
    "early_stopping_met": "early stopping not satisfied",
}


def read_detail(path: Path) -> dict:
    """{"values": key → last value, "errors": [...], "warnings": [...]} of a detail log."""
    values, errors, warnings = {}, [], []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        if not line.startswith(PREFIX):
            continue
        try:
            entry = json.loads(line[len(PREFIX) :])
        except json.JSONDecodeError as exc:
            raise BackendError(f"loadgen | {path}:{number} is not an MLLOG JSON line: {exc}") from None
        values[entry["key"]] = entry["value"]
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{entry['key']}: {entry['value']}")
        elif meta.get("is_warning"):
            warnings.append(f"{entry['key']}: {entry['value']}")
    return {"values": values, "errors": errors, "warnings": warnings}


def read_summary(path: Path) -> dict:
    """The summary's headline: `Result is :` and the recommendations, as written."""
    validity, recommendations, in_recs = None, [], False
    for line in Path(path).read_text(errors="replace").splitlines():
        text = line.strip()
        if text.startswith("Result is :"):
            validity = text.split(":", 1)[1].strip()
        elif text.startswith("Recommendations:"):
            in_recs = True
        elif in_recs and text.startswith("*"):
            recommendations.append(text.lstrip("* ").strip())
        elif in_recs and text and not text.startswith("*"):
            in_recs = False
    return {"validity": validity, "recommendations": recommendations}


def _ms(ns) -> float | None:
    return None if ns is None else float(ns) / 1e6


def result(scenario: str, folder: Path) -> dict:
    """The record's `scenario.result` of one performance run whose logs are in `folder`."""
    detail, summary = read_detail(folder / DETAIL), read_summary(folder / SUMMARY)
    v = detail["values"]
    validity = v.get("result_validity")
    if validity is None:
        raise BackendError(
            f"loadgen | {folder / DETAIL} has no result_validity: the run did not finish; "
            f"errors: {'; '.join(detail['errors']) or 'none logged'}"
        )
    if summary["validity"] not in (None, validity):
        raise BackendError(
            f"loadgen | {folder}: the summary says {summary['validity']} but the detail log says {validity}"
        )
    reasons = [why for key, why in CONSTRAINTS.items() if v.get(key) is False]
    if v.get("result_invalid_reason"):
        reasons.append(v["result_invalid_reason"].strip())
    reasons += [e for e in detail["errors"] if e not in reasons]
    latency = {
        "min": _ms(v.get("result_min_latency_ns")),
        "max": _ms(v.get("result_max_latency_ns")),
        "mean": _ms(v.get("result_mean_latency_ns")),
    }
    latency |= {
        f"p{p.rstrip('0').rstrip('.')}": _ms(v.get(f"result_{p}_percentile_latency_ns")) for p in PERCENTILES
    }
    out = {
        "validity": validity,
        "valid": validity == "VALID",
        "reasons": reasons,
        "constraints": {key.removeprefix("result_"): v[key] for key in CONSTRAINTS if key in v},
        "query_count": v.get("result_query_count"),
        "samples_per_s": _samples_per_s(scenario, v),
        "latency_ms": latency,
        "early_stopping": {
            "met": v.get("early_stopping_met"),
            "estimate_ms": _ms(v.get("early_stopping_latency_ss", v.get("early_stopping_latency_ms"))),
            "text": " ".join((v.get("early_stopping_result") or "").split()),
        },
        "target": {
            "qps": v.get("effective_target_qps"),
            "latency_ms": _ms(v.get("effective_target_latency_ns")),
            "percentile": v.get("effective_target_latency_percentile"),
            "samples_per_query": v.get("effective_samples_per_query"),
            "min_duration_ms": v.get("effective_min_duration_ms"),
            "min_query_count": v.get("effective_min_query_count"),
            "performance_sample_count": v.get("effective_performance_sample_count"),
        },
        "recommendations": summary["recommendations"],
        "warnings": detail["warnings"],
        "loadgen_version": v.get("loadgen_version"),
    }
    if scenario == "server":
        out["scheduled_samples_per_s"] = v.get("result_scheduled_samples_per_sec")
        out["overlatency_query_count"] = v.get("result_overlatency_query_count")
    if scenario == "multistream":
        out["per_query_latency_ms"] = {
            f"p{p.rstrip('0').rstrip('.')}": _ms(v.get(f"result_{p}_percentile_per_query_latency_ns"))
            for p in PERCENTILES
        }
    return out


def _samples_per_s(scenario: str, v: dict) -> float | None:
    if scenario == "server":
        return v.get("result_completed_samples_per_sec")
    if scenario == "offline":
        return v.get("result_samples_per_second")
    if scenario == "singlestream":
        return v.get("result_qps_with_loadgen_overhead")
    # MultiStream issues the next query when the last one is done: samples per query over the mean query time.
    mean_ns, per_query = v.get("result_mean_query_latency_ns"), v.get("effective_samples_per_query")
    return per_query * 1e9 / mean_ns if mean_ns and per_query else None


def accuracy_entries(folder: Path) -> list[dict]:
    """mlperf_log_accuracy.json: [{seq_id, qsl_idx, data (hex)}, ...]."""
    path = folder / ACCURACY
    try:
        return json.loads(path.read_text() or "[]")
    except json.JSONDecodeError as exc:
        raise BackendError(f"loadgen | {path} is not valid JSON: {exc}") from None
