"""The metric arithmetic, from hand-made clock readings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_tee.measure.metrics import METRICS, RoundError, RoundTimes, median_ci, round_metrics, summarize


def times(start: float, tokens: list[float], end: float) -> RoundTimes:
    return RoundTimes(start=start, token_times=tuple(tokens), end=end)


def test_ttft_prefill_decode_e2e_from_timestamps():
    # prompt 100 tokens, prefill 0.5 s, then one token every 0.1 s, 0.05 s after the last one to return.
    stamps = [0.5 + 0.1 * i for i in range(5)]
    values = round_metrics(times(0.0, stamps, stamps[-1] + 0.05), prompt_tokens=100, new_tokens=5, batch=1)
    assert values["ttft_s"] == pytest.approx(0.5)
    assert values["prefill_tps"] == pytest.approx(200.0)
    assert values["decode_tps"] == pytest.approx(4 / 0.4)
    assert values["e2e_tps"] == pytest.approx(5 / 0.95)
    assert values["itl_p50_ms"] == pytest.approx(100.0)


def test_single_new_token_has_no_decode_rate():
    values = round_metrics(times(1.0, [1.25], 1.3), prompt_tokens=10, new_tokens=1, batch=1)
    assert "decode_tps" not in values
    assert "itl_p50_ms" not in values
    assert values["ttft_s"] == pytest.approx(0.25)
    assert values["e2e_tps"] == pytest.approx(1 / 0.3)


def test_two_new_tokens_decode_rate_is_one_gap():
    values = round_metrics(times(0.0, [0.2, 0.45], 0.5), prompt_tokens=8, new_tokens=2, batch=1)
    assert values["decode_tps"] == pytest.approx(1 / 0.25)
    assert values["itl_p50_ms"] == values["itl_p99_ms"] == pytest.approx(250.0)


def test_batch_counts_every_sequence():
    stamps = [0.1, 0.2, 0.3]
    one = round_metrics(times(0.0, stamps, 0.3), prompt_tokens=16, new_tokens=3, batch=1)
    four = round_metrics(times(0.0, stamps, 0.3), prompt_tokens=16, new_tokens=3, batch=4)
    for name in ("decode_tps", "e2e_tps", "prefill_tps"):
        assert four[name] == pytest.approx(4 * one[name])
    assert four["ttft_s"] == one["ttft_s"]


def test_inter_token_percentiles_follow_numpy():
    gaps = [0.010] * 90 + [0.050] * 9 + [0.500]
    stamps = list(np.cumsum([0.2, *gaps]))
    values = round_metrics(times(0.0, stamps, stamps[-1]), prompt_tokens=4, new_tokens=len(stamps), batch=1)
    expected = np.percentile(np.array(gaps) * 1e3, [50, 90, 99])
    assert [values["itl_p50_ms"], values["itl_p90_ms"], values["itl_p99_ms"]] == pytest.approx(expected)
    assert values["itl_p50_ms"] == pytest.approx(10.0)
    assert values["itl_p99_ms"] > 50.0


@pytest.mark.parametrize(
    ("stamps", "end", "message"),
    [
        ([0.1, 0.2], 0.3, "expected 3"),
        ([0.1, 0.3, 0.2], 0.4, "not in order"),
        ([0.1, 0.2, 0.3], 0.25, "not in order"),
    ],
)
def test_inconsistent_rounds_are_errors(stamps, end, message):
    with pytest.raises(RoundError, match=message):
        round_metrics(times(0.0, stamps, end), prompt_tokens=4, new_tokens=3, batch=1)


def test_zero_duration_is_an_error_not_infinity():
    with pytest.raises(RoundError, match="no measurable time"):
        round_metrics(times(1.0, [1.0, 1.5], 1.5), prompt_tokens=4, new_tokens=2, batch=1)


def test_median_ci_coverage_is_exact_binomial():
    low, high, coverage = median_ci([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (low, high) == (1.0, 5.0)
    assert coverage == pytest.approx(1 - 2 / 32)  # n = 5 cannot reach 95 %
    low, high, coverage = median_ci(list(range(20)))
    assert coverage >= 0.95
    assert low < 9.5 < high
    assert (low, high) == (5.0, 14.0)


@pytest.mark.slow
def test_median_ci_covers_true_median_about_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    trials = 2000
    for _ in range(trials):
        low, high, _ = median_ci(rng.lognormal(0.0, 0.3, size=15))
        hits += low <= 1.0 <= high
    assert 0.94 <= hits / trials <= 0.99


def test_summary_fields_and_direction():
    summary = summarize("decode_tps", [10.0, 12.0, 11.0, 13.0, 9.0])
    assert summary.median == 11.0
    assert summary.mean == pytest.approx(11.0)
    assert summary.stdev == pytest.approx(np.std([10, 12, 11, 13, 9], ddof=1))
    assert summary.unit == "tok/s"
    assert summary.higher_is_better
    assert summary.ci95 == (9.0, 13.0)
    assert summary.p5 <= summary.median <= summary.p95
    assert not summarize("ttft_s", [0.1, 0.2]).higher_is_better
    assert math.isclose(summary.ci_half_width_pct, 2 / 11 * 100)


def test_every_metric_declares_unit_and_direction():
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.unit in {"tok/s", "req/s", "s", "ms", "MiB", "ratio"}
        assert metric.higher_is_better == metric.unit.endswith("/s")
