"""The gate's statistics on synthetic histories with known answers (fixed seeds).

Null histories: per-round lognormal noise with CV 1–5 %, the nightly level drifting as an AR(1) process in log
space (φ = 0.8, stationary spread half the CV), 1 % of rounds slowed 1.5–3× (interference), and 0.2 % of
nights spiking 20–50 % for one night. Thousands of cell-nights are judged at once through the same functions
the gate uses (bench/stats.py: assess_samples → fdr_adjust across the night's cells → classify).
"""

import datetime

import numpy as np
import pytest

from genrec_bench.bench import stats as st
from genrec_bench.reports.gate import NORMAL_TAIL, SIGN_TEST, judge
from genrec_bench.reports.history import read_run

SERIES, NIGHTS, ROUNDS = 400, 40, 60
CVS = (0.01, 0.02, 0.03, 0.05)
STEPS = (0.05, 0.10, 0.20)
DEFAULTS = st.GateSettings()


def simulate(
    rng,
    cv,
    *,
    series=SERIES,
    nights=NIGHTS,
    rounds=ROUNDS,
    phi=0.8,
    drift=0.5,
    spike_nights=0.002,
    slow_rounds=0.01,
):
    """Samples (series × nights × rounds) of null histories."""
    sd = drift * cv
    level = np.empty((series, nights))
    level[:, 0] = rng.normal(0, sd, series)
    shocks = rng.normal(0, sd * np.sqrt(1 - phi**2), (series, nights))
    for t in range(1, nights):
        level[:, t] = phi * level[:, t - 1] + shocks[:, t]
    level = np.exp(level) * np.where(
        rng.random((series, nights)) < spike_nights, rng.uniform(1.2, 1.5, (series, nights)), 1.0
    )
    samples = level[..., None] * rng.lognormal(0, cv, (series, nights, rounds))
    slow = rng.random(samples.shape) < slow_rounds
    return samples * np.where(slow, rng.uniform(1.5, 3.0, samples.shape), 1.0)


def gate_nights(samples, settings=DEFAULTS, first=None):
    """Verdicts (series × judged nights) of nights `first`.. against the nights before each, as the gate
    does."""
    medians = np.median(samples, axis=-1)
    out = []
    for t in range(settings.min_points if first is None else first, samples.shape[1]):
        window = medians[:, max(0, t - settings.window) : t]
        got = st.assess_samples(medians[:, t], samples[:, t], window, samples[:, t - 1], settings)
        q = st.fdr_adjust(got["p_worse"])  # across the night's cells, as across a run's cells × metrics
        out.append(
            st.classify(got["change"], got["threshold"], got["p_worse"], q, got["p_better"], settings.alpha)
        )
    return np.array(out).T


def test_false_positive_rate_and_power_at_the_defaults(capsys):
    rng = np.random.default_rng(20261123)
    fpr, power = {}, {}
    for cv in CVS:
        verdicts = gate_nights(simulate(rng, cv))
        fpr[cv] = ((verdicts == "regression").mean(), verdicts.size)
        for step in STEPS:
            planted = simulate(rng, cv, nights=21, spike_nights=0.0)
            planted[:, 20] *= 1 + step
            power[cv, step] = (gate_nights(planted, first=20)[:, 0] == "regression").mean()
    with capsys.disabled():
        print(f"\nnull histories: false-positive rate per cell-night at the defaults ({st.GateSettings()})")
        for cv, (rate, n) in fpr.items():
            print(f"  CV {100 * cv:.0f} %: {100 * rate:.2f} % of {n} cell-nights")
        print("power: planted step found on its first night (share of 400 series)")
        print("  CV    " + "".join(f"  +{100 * s:.0f} %" for s in STEPS))
        for cv in CVS:
            print(f"  {100 * cv:.0f} %  " + "".join(f"  {100 * power[cv, s]:5.1f}" for s in STEPS))
    assert all(rate <= 0.01 for rate, _ in fpr.values()), fpr
    assert all(power[cv, s] >= 0.95 for cv in CVS if cv <= 0.03 for s in STEPS if s >= 0.10), power
    assert all(power[cv, 0.20] >= power[cv, 0.10] >= power[cv, 0.05] for cv in CVS)


def test_a_spike_that_reverts_is_never_a_regression():
    rng = np.random.default_rng(5)
    samples = simulate(rng, 0.02, spike_nights=0.0)
    samples[:100, 20] *= 1.4  # one slow night …
    samples[100:200, 20] *= 0.7  # … or one fast night (a latest baseline that looks too good)
    samples[200:300, 21, :6] *= 3.0  # a burst of slow rounds within a night
    after = gate_nights(samples, first=21)
    assert not (after == "regression").any()
    assert (
        gate_nights(samples, first=20)[:100, 0] == "regression"
    ).mean() > 0.95  # on its night it looks real


def test_noise_is_robust_and_the_threshold_has_a_floor():
    quiet = [10.0, 10.1, 9.9, 10.0, 10.05, 9.95]
    assert st.relative_noise(quiet + [30.0]) == pytest.approx(st.relative_noise(quiet + [10.0]), rel=0.5)
    assert st.change_threshold(0.0, st.GateSettings()) == 0.05
    assert st.change_threshold(0.04, st.GateSettings()) == pytest.approx(0.12)
    assert st.relative_noise([5.0]) == 0.0


def test_classify_needs_all_three_conditions():
    got = st.classify(
        worse_change=[0.2, 0.2, 0.2, 0.02, -0.2],
        threshold=[0.05] * 5,
        p_worse=[1e-6, 0.5, 1e-6, 1e-9, 1.0],
        q_worse=[1e-5, 0.5, 0.2, 1e-8, 1.0],
        p_better=[1.0, 0.5, 1.0, 1.0, 1e-6],
        alpha=0.01,
    )
    assert list(got) == ["regression", "suspect", "suspect", "ok", "improvement"]


def test_benjamini_hochberg_is_scipys():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    assert np.allclose(st.fdr_adjust(p), [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.08457143, 0.205])
    assert st.fdr_adjust([]).size == 0


def test_the_sign_test_and_the_normal_tail():
    assert st.sign_test_pvalue([2.0] * 20, 1.0) == pytest.approx(0.5**20)
    assert st.sign_test_pvalue([1.0] * 5, 1.0) == 1.0
    assert st.level_pvalue(0.1, 0.05) == pytest.approx(0.02275, rel=1e-3)
    assert st.level_pvalue(0.1, 0.0) == 0.0 and st.level_pvalue(-0.1, 0.0) == 1.0
    with pytest.raises(ValueError, match="min_points=20 must be between 1 and window=14"):
        st.GateSettings(min_points=20)


# --- the same rules through the gate's own code, on runs as the history reads them --------------------------


def _runs(
    tmp_path, kit, levels, *, tonight_scale=1.0, torch=("2.11.0", "2.11.0"), v1=False, memory=(1000, 1000)
):
    rng = np.random.default_rng(3)
    start = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
    cell = kit.CELLS[0]
    runs = []
    for day, level in enumerate([*levels, levels[-1] * tonight_scale]):
        last = day == len(levels)
        record = kit.make_record(cell, kit.night(rng, level), memory=memory[last])
        if v1 and not last:  # the committed baselines: schema v1, no raw samples
            record["schema_version"] = 1
            del record["latency_ms"]["samples"], record["latency_ms"]["samples_stored"]
        path = kit.write_run(
            tmp_path / f"n{day}.json", [record], when=start + datetime.timedelta(days=day), torch=torch[last]
        )
        runs.append(read_run(str(path)))
    return runs[:-1], runs[-1]


def _verdict(result, metric):
    return next(v for v in result.verdicts if v.metric == metric)


def test_a_software_change_is_a_marker_not_a_new_series(tmp_path, kit):
    baseline, tonight = _runs(tmp_path, kit, [1.0] * 6, torch=("2.11.0", "2.12.0"))
    assert tonight.cells.keys() == baseline[0].cells.keys()
    result = judge(tonight, baseline)
    assert any("torch 2.11.0 → 2.12.0" in n and "marker" in n for n in result.notes)
    assert _verdict(result, "p50_ms").verdict == "ok" and _verdict(result, "p50_ms").points == 6


def test_a_changed_cell_starts_a_new_series(tmp_path, kit):
    baseline, tonight = _runs(tmp_path, kit, [1.0] * 6, tonight_scale=1.5)
    ((series, record),) = tonight.cells.items()
    record["timer"]["warmup_rounds"] = 50  # what defines the work changed: not comparable with the old series
    from genrec_bench.reports.fingerprint import series_key

    tonight.cells = {series_key(record): record}
    assert series_key(record) != series
    assert {v.verdict for v in judge(tonight, baseline).verdicts} == {"insufficient_data"}


def test_a_v1_baseline_without_samples_is_judged_by_a_sign_test(tmp_path, kit):
    baseline, tonight = _runs(tmp_path, kit, [1.0] * 6, tonight_scale=1.2, v1=True)
    p50 = _verdict(judge(tonight, baseline), "p50_ms")
    assert (p50.verdict, p50.test) == ("regression", SIGN_TEST)
    swapped = judge(baseline[-1], [*baseline[:-1], tonight])  # tonight without samples: nothing to test
    assert _verdict(swapped, "p50_ms").verdict == "insufficient_data"
    assert "no raw samples" in _verdict(swapped, "p50_ms").reason


def test_too_few_nights_is_insufficient_data_and_memory_is_a_single_reading(tmp_path, kit):
    baseline, tonight = _runs(tmp_path, kit, [1.0] * 4, memory=(1000, 1300))
    assert {v.verdict for v in judge(tonight, baseline).verdicts} == {"insufficient_data"}
    baseline, tonight = _runs(tmp_path, kit, [1.0] * 5, memory=(1000, 1300))
    memory = _verdict(judge(tonight, baseline), "peak_mb")
    assert (memory.verdict, memory.test, round(memory.change, 3)) == ("regression", NORMAL_TAIL, 0.3)
