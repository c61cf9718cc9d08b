"""The Server peak search's logic over fake LoadGen outcomes (pure: no LoadGen, no backend)."""

import pytest

from genrec_bench.bench.loadgen.peak import bracket, find_peak

SEARCH = {"growth": 2.0, "tolerance": 0.1, "max_probes": 12, "min_qps": 1.0, "max_qps": 1e6}


def system(capacity: float):
    """A system that LoadGen finds VALID below `capacity` QPS; it records every probe it was asked for."""
    asked = []

    def probe(qps):
        asked.append(qps)
        return qps <= capacity, {"why": "ok" if qps <= capacity else "latency bound not met"}

    return probe, asked


@pytest.mark.parametrize("capacity, start", [(1000.0, 100.0), (1000.0, 5000.0), (333.0, 333.0), (7.5, 200.0)])
def test_the_peak_is_the_highest_valid_probe_within_tolerance(capacity, start):
    probe, asked = system(capacity)
    search = find_peak(probe, start=start, **SEARCH)
    assert search["converged"] and search["stopped"] == "converged"
    low, high = search["bracket"]
    assert low == search["peak_qps"] <= capacity < high <= low * 1.1
    assert [p["qps"] for p in search["probes"]] == asked and asked[0] == start
    assert all(p["valid"] == (p["qps"] <= capacity) for p in search["probes"])
    assert all("why" in p for p in search["probes"])  # what the probe function returned is kept


def test_grows_then_bisects_geometrically():
    probe, asked = system(1000.0)
    find_peak(probe, start=100.0, **SEARCH)
    assert asked[:5] == [100.0, 200.0, 400.0, 800.0, 1600.0]
    assert asked[5] == pytest.approx((800.0 * 1600.0) ** 0.5)


def test_bounded_by_probes_and_range():
    probe, asked = system(1000.0)
    search = find_peak(probe, start=100.0, **{**SEARCH, "max_probes": 3})
    assert len(asked) == 3 and search["stopped"] == "max_probes" and not search["converged"]
    assert search["peak_qps"] == 400.0 and search["bracket"] == [400.0, None]

    probe, asked = system(1e9)  # never INVALID: stops at max_qps, which is then the peak
    search = find_peak(probe, start=100.0, **{**SEARCH, "max_qps": 1000.0})
    assert search["stopped"] == "max_qps is VALID" and search["peak_qps"] == 1000.0 and max(asked) == 1000.0

    probe, asked = system(0.5)  # never VALID: stops at min_qps, and there is no peak
    search = find_peak(probe, start=100.0, **SEARCH)
    assert search["stopped"] == "min_qps is INVALID" and search["peak_qps"] is None and min(asked) == 1.0


def test_a_noisy_probe_cannot_invert_the_bracket():
    probes = [
        {"qps": 100, "valid": True},
        {"qps": 200, "valid": False},
        {"qps": 150, "valid": True},
        {"qps": 300, "valid": True},
    ]  # 300 VALID after 200 INVALID: the 200 was noise
    assert bracket(probes) == (300, None)
    assert bracket([{"qps": 100, "valid": False}]) == (None, 100)
    assert bracket([]) == (None, None)


@pytest.mark.parametrize("bad", [{"start": 0.5}, {"growth": 1.0}, {"tolerance": 0.0}, {"max_probes": 0}])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ValueError, match="peak search"):
        find_peak(lambda q: (True, {}), **{"start": 10.0, **SEARCH, **bad})
