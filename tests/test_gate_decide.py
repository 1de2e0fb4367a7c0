"""The rounds model (``models.rounds``, for rounds of one process) and the outcome rule shared by all models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_tee.baseline.gate import apply_family_correction, holm_adjust, is_gate_look
from pytest_tee.baseline.models import Evidence, Rule, rounds
from pytest_tee.records import Verdict

CV = 0.10
SIGMA = math.sqrt(math.log(1 + CV**2))  # lognormal with a 10 % coefficient of variation


def lognormal(rng: np.random.Generator, median: float, n: int, sigma: float = SIGMA) -> list[float]:
    return list(rng.lognormal(math.log(median), sigma, n))


def decide(
    benchmark: str, metric: str, base: list[float], head: list[float], threshold: float, *, higher_is_better: bool
) -> Verdict:
    return rounds.decide(Evidence(benchmark, metric, base, head, interleaved=True), Rule(threshold, higher_is_better))


def tps(base: list[float], head: list[float], threshold: float = 5.0, name: str = "bench") -> Verdict:
    """The bootstrap's random stream is derived from the benchmark and metric: another name, another stream."""
    return decide(name, "decode_tps", base, head, threshold, higher_is_better=True)


def test_clear_drop_in_throughput_is_regressed() -> None:
    rng = np.random.default_rng(1)
    verdict = tps(lognormal(rng, 10.0, 8, 0.02), lognormal(rng, 8.0, 8, 0.02))
    assert verdict.outcome == "regressed"
    assert verdict.ratio == pytest.approx(0.8, rel=0.03)
    assert verdict.ci95[0] < verdict.ratio < verdict.ci95[1] < 0.95
    assert (verdict.detail.n_base, verdict.detail.n_head, verdict.threshold_pct) == (8, 8, 5.0)


def test_clear_gain_in_throughput_is_improved() -> None:
    rng = np.random.default_rng(2)
    assert tps(lognormal(rng, 10.0, 8, 0.02), lognormal(rng, 12.0, 8, 0.02)).outcome == "improved"


@pytest.mark.slow
def test_identical_distributions_are_never_regressed() -> None:
    rng = np.random.default_rng(3)
    outcomes = {tps(lognormal(rng, 10.0, 10), lognormal(rng, 10.0, 10), name=f"bench-{i}").outcome for i in range(60)}
    assert "regressed" not in outcomes
    assert outcomes <= {"unchanged", "inconclusive", "improved"}


def test_same_samples_with_low_noise_are_unchanged() -> None:
    rng = np.random.default_rng(4)
    base = lognormal(rng, 10.0, 10, 0.01)
    verdict = tps(base, [value * 1.001 for value in base])
    assert verdict.outcome == "unchanged"
    assert verdict.ci95[0] >= 0.95
    assert verdict.ci95[1] <= 1.05


def test_estimate_exactly_on_the_threshold_is_not_a_regression() -> None:
    rng = np.random.default_rng(5)
    base = lognormal(rng, 100.0, 10, 0.001)
    verdict = tps(base, [value * 0.95 for value in base])
    assert verdict.ratio == pytest.approx(0.95)
    assert verdict.outcome == "inconclusive"
    assert verdict.hint is None
    assert "threshold" in verdict.note


def test_just_beyond_and_just_inside_the_threshold() -> None:
    rng = np.random.default_rng(6)
    base = lognormal(rng, 100.0, 10, 0.001)
    assert tps(base, [value * 0.94 for value in base]).outcome == "regressed"
    assert tps(base, [value * 0.96 for value in base]).outcome == "unchanged"
    # A significant 4 % drop is within a 5 % limit: not a regression (the limit is the tolerated change).
    assert tps(base, [value * 0.96 for value in base], threshold=3.0).outcome == "regressed"


def test_lower_is_better_metrics_regress_when_they_go_up() -> None:
    rng = np.random.default_rng(7)
    base = lognormal(rng, 0.200, 8, 0.02)
    slower = decide("b", "ttft_s", base, lognormal(rng, 0.240, 8, 0.02), 10.0, higher_is_better=False)
    faster = decide("b", "ttft_s", base, lognormal(rng, 0.160, 8, 0.02), 10.0, higher_is_better=False)
    assert slower.outcome == "regressed"
    assert slower.ratio > 1.1
    assert faster.outcome == "improved"
    assert faster.ratio < 0.9
    assert slower.higher_is_better is False


@pytest.mark.parametrize(("n_base", "n_head"), [(2, 5), (5, 2), (0, 5), (5, 0)])
def test_too_few_samples_are_inconclusive_with_a_note(n_base: int, n_head: int) -> None:
    verdict = tps([10.0, 10.1, 9.9, 10.2, 9.8][:n_base], [5.0, 5.1, 4.9, 5.2, 4.8][:n_head])
    assert verdict.outcome == "inconclusive"
    assert "too few samples" in verdict.note
    assert verdict.hint is not None
    assert (verdict.hint.count, verdict.hint.unit) == (3 - min(n_base, n_head), "rounds")
    assert math.isnan(verdict.ci95[0])


@pytest.mark.parametrize("bad", [[10.0, 0.0, 10.0], [10.0, float("nan"), 10.0], [10.0, -1.0, 10.0]])
def test_unusable_samples_are_inconclusive_with_a_note(bad: list[float]) -> None:
    verdict = tps([10.0, 10.1, 9.9], bad)
    assert verdict.outcome == "inconclusive"
    assert "head samples" in verdict.note


def test_the_interval_is_reproducible_with_a_stream_per_benchmark() -> None:
    rng = np.random.default_rng(8)
    base, head = lognormal(rng, 10.0, 7), lognormal(rng, 9.5, 7)
    assert tps(base, head, name="a") == tps(base, head, name="a")
    assert tps(base, head, name="a").ci95 != tps(base, head, name="b").ci95


def test_inconclusive_verdict_hints_more_rounds() -> None:
    rng = np.random.default_rng(9)
    verdict = tps(lognormal(rng, 10.0, 5), lognormal(rng, 9.2, 5))
    assert verdict.outcome == "inconclusive"
    assert verdict.hint is not None
    assert verdict.hint.count >= 1
    assert f"about {verdict.hint.count} more rounds" in verdict.note


def test_to_json_is_plain_json_without_nan() -> None:
    short = json.loads(json.dumps(tps([10.0, 10.0], [9.0, 9.0, 9.0]).to_json(), allow_nan=False))
    assert short["ci95"] == [None, None]
    assert short["ratio"] == pytest.approx(0.9)
    tested = json.loads(json.dumps(tps([10.0, 10.1, 9.9], [8.0, 8.1, 7.9]).to_json(), allow_nan=False))
    assert 0 < tested["detail"]["p_value"] < 1
    assert tested["change_pct"] == pytest.approx(-20.0)


def test_holm_adjusted_p_values() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([]) == []


def test_family_correction_demotes_borderline_regressions() -> None:
    rng = np.random.default_rng(10)
    # 5 vs 5 with every head round below every base round: the smallest attainable p, 1/252 ≈ 0.004.
    verdicts = [tps(lognormal(rng, 10.0, 5, 0.01), lognormal(rng, 8.0, 5, 0.01)) for _ in range(3)]
    assert [v.outcome for v in verdicts] == ["regressed"] * 3
    corrected = apply_family_correction(verdicts, alpha=0.01)
    assert [v.outcome for v in corrected] == ["inconclusive"] * 3  # Holm: 3 × 0.004 > 0.01
    assert all("Holm" in v.note and v.detail.p_adjusted == pytest.approx(3 / 252) for v in corrected)
    assert all(v.hint is not None and v.hint.count >= 1 for v in corrected)  # 6 a side reach 0.01 / 3
    assert apply_family_correction(verdicts[:2], alpha=0.01)[0].outcome == "regressed"  # 2 × 0.004 ≤ 0.01


def test_gate_looks_double() -> None:
    assert [n for n in range(1, 50) if is_gate_look(n, 5)] == [5, 10, 20, 40]
    assert not is_gate_look(3, 0)


def _rate(outcome: str, drop: float, rounds: int, pairs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for index in range(pairs):
        base = lognormal(rng, 10.0, rounds)
        head = lognormal(rng, 10.0 * (1 - drop), rounds)
        hits += tps(base, head, name=f"bench-{index}").outcome == outcome
    return hits / pairs


@pytest.mark.slow
def test_false_alarm_rate_of_a_a_pairs_is_at_most_one_percent() -> None:
    # Lognormal A/A pairs, CV 10 %, 5 rounds per side, 5 % limit. The Mann–Whitney condition bounds the rate at
    # 2/252 = 0.79 % whatever the distribution; 1000 pairs estimate that with a standard error of 0.28 %, too
    # coarse to check "≤ 1 %", so 4000 pairs (standard error 0.14 %).
    rate = _rate("regressed", 0.0, rounds=5, pairs=4000, seed=12)
    print(f"A/A false-alarm rate at 5 rounds, CV 10 %, limit 5 %: {rate:.1%}")
    assert rate <= 0.01


@pytest.mark.slow
def test_detection_rate_of_a_true_ten_percent_drop() -> None:
    # CV 10 % needs about 30 rounds per side to see a 10 % drop beyond a 5 % limit reliably (measured: ~90 %).
    rate = _rate("regressed", 0.10, rounds=30, pairs=300, seed=13)
    print(f"detection rate of a 10 % drop at 30 rounds, CV 10 %, limit 5 %: {rate:.1%}")
    assert rate >= 0.8
