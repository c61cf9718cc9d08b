import pytest

from genrec_bench.bench.stats import bootstrap_ci, percentile, summarize, throughput


def test_percentiles_interpolate_like_numpy():
    samples = [4.0, 1.0, 3.0, 2.0]  # sorted 1, 2, 3, 4
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 90) == pytest.approx(3.7)
    assert percentile([5.0], 99) == 5.0


def test_summary_has_every_field():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["p50"] == 3.0 and s["min"] == 1.0 and s["max"] == 100.0 and s["n"] == 5
    assert s["p99"] > s["p90"] > s["p50"]
    assert s["mean"] == pytest.approx(22.0)


def test_bootstrap_interval_brackets_the_median_and_is_seeded():
    samples = [float(x) for x in range(1, 101)]
    lo, hi = bootstrap_ci(samples)
    assert lo < percentile(samples, 50) < hi
    assert (lo, hi) == bootstrap_ci(samples)
    assert hi - lo < 30


def test_throughput():
    assert throughput(16, 2.0) == 8000.0


@pytest.mark.parametrize("call, words", [
    (lambda: percentile([], 50), "no samples"),
    (lambda: percentile([1.0], 101), "outside 0..100"),
    (lambda: bootstrap_ci([1.0], confidence=1.5), "between 0 and 1"),
    (lambda: throughput(1, 0), "must be positive"),
])
def test_bad_arguments_say_what_is_wrong(call, words):
    with pytest.raises(ValueError, match=words):
        call()
