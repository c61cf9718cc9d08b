import pytest

from genrec_bench.bench.stats import latency_summary, median_ci, percentile, thin, throughput


def test_percentiles_interpolate_like_numpy():
    samples = [4.0, 1.0, 3.0, 2.0]  # sorted 1, 2, 3, 4
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 90) == pytest.approx(3.7)
    assert percentile([5.0], 99) == 5.0


def test_summary_has_every_field():
    s = latency_summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["p50"] == 3.0 and s["min"] == 1.0 and s["max"] == 100.0 and s["n"] == 5
    assert s["p99"] > s["p90"] > s["p50"]
    assert s["mean"] == pytest.approx(22.0)


def test_bootstrap_interval_brackets_the_median_and_is_seeded():
    samples = [float(x) for x in range(1, 101)]
    lo, hi = median_ci(samples)
    assert lo < percentile(samples, 50) < hi
    assert (lo, hi) == median_ci(samples)
    assert hi - lo < 30


def test_no_samples_summarise_as_nothing_measured():
    assert latency_summary([]) == {
        "p50": None,
        "p90": None,
        "p99": None,
        "mean": None,
        "min": None,
        "max": None,
        "stdev": None,
        "n": 0,
    }


def test_throughput():
    assert throughput(16, 2.0) == 8000.0


def test_thinning_keeps_time_order_and_both_ends():
    samples = [float(i) for i in range(10_000)]
    kept = thin(samples, 1000)
    assert len(kept) == 1000 and kept[0] == 0.0 and kept[-1] == 9999.0 and kept == sorted(kept)
    assert thin([3.0, 1.0], 1000) == [3.0, 1.0]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: percentile([], 50), "no samples"),
        (lambda: percentile([1.0], 101), "outside 0..100"),
        (lambda: median_ci([1.0], confidence=1.5), "between 0 and 1"),
        (lambda: throughput(1, 0), "must be positive"),
        (lambda: throughput(1, float("nan")), "must be positive and finite"),
        (lambda: thin([1.0], 0), "at least 1"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, words):
    with pytest.raises(ValueError, match=words):
        call()
