"""The Server peak search: the highest target QPS that LoadGen reports VALID at the latency bound.

A bounded search over LoadGen runs (each probe is one Server performance run): from the first target, grow by
`growth` while probes are VALID (shrink while INVALID) until one of each brackets the peak, then bisect the
bracket geometrically until its ends are within `tolerance` of each other, within `max_probes` runs in all and
inside [min_qps, max_qps]. The bracket is recomputed from every probe so far — the highest VALID, the lowest
INVALID above it — so one noisy probe cannot leave it inverted. Pure: the probe function is the only effect.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def bracket(probes: list[dict]) -> tuple[float | None, float | None]:
    """(highest VALID qps, lowest INVALID qps above it) of `probes` ({"qps", "valid"}), None where none is."""
    valid = [p["qps"] for p in probes if p["valid"]]
    low = max(valid) if valid else None
    above = [p["qps"] for p in probes if not p["valid"] and (low is None or p["qps"] > low)]
    return low, (min(above) if above else None)


def next_target(
    low: float | None, high: float | None, *, growth: float, min_qps: float, max_qps: float
) -> float:
    """Where the next probe goes for the bracket (low, high): outward by `growth` until it is closed, then its
    geometric middle."""
    if low is not None and high is not None:
        return math.sqrt(low * high)
    if low is not None:
        return min(low * growth, max_qps)
    return max(high / growth, min_qps)


def find_peak(
    probe: Callable[[float], tuple[bool, dict]],
    *,
    start: float,
    growth: float,
    tolerance: float,
    max_probes: int,
    min_qps: float,
    max_qps: float,
) -> dict:
    """Run probes (`probe(qps) → (valid, what to record)`) and return the search: `peak_qps` (None when no
    probe was VALID), the final bracket, why it stopped, and every probe in order."""
    if not (min_qps <= start <= max_qps and growth > 1 and 0 < tolerance < 1 and max_probes >= 1):
        raise ValueError(
            f"peak search: start={start} must lie in [min_qps={min_qps}, max_qps={max_qps}], "
            f"growth={growth} > 1, 0 < tolerance={tolerance} < 1, max_probes={max_probes} >= 1"
        )
    probes: list[dict] = []
    target, stopped = start, "max_probes"
    while len(probes) < max_probes:
        valid, info = probe(target)
        probes.append({"qps": target, "valid": bool(valid), **info})
        low, high = bracket(probes)
        if low is not None and high is not None and high <= low * (1 + tolerance):
            stopped = "converged"
            break
        if high is None and low is not None and low >= max_qps:
            stopped = "max_qps is VALID"
            break
        if low is None and high is not None and high <= min_qps:
            stopped = "min_qps is INVALID"
            break
        target = next_target(low, high, growth=growth, min_qps=min_qps, max_qps=max_qps)
    low, high = bracket(probes)
    return {
        "peak_qps": low,
        "bracket": [low, high],
        "stopped": stopped,
        "converged": stopped == "converged",
        "probes": probes,
    }
