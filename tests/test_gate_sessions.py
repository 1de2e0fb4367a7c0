"""The session-level models on synthetic sessions: formulas, outcomes, hints, and error rates with a session effect.

The simulations draw what a shared runner does: each session has its own level, log level ~ N(log true, σ_s), and
its rounds scatter around it, log round ~ N(log level, σ_r). σ_s = 0.09 and σ_r = 0.07 are what 200 real sessions
of the tiny model showed on the shared 2-vCPU development VM (docs/baselines-and-gating.md).
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from scipy.stats import t

from pytest_tee.baseline import models
from pytest_tee.baseline.ab_command import DEFAULT_BLOCKS
from pytest_tee.baseline.gate import apply_family_correction
from pytest_tee.baseline.models import Evidence, Rule
from pytest_tee.baseline.models import blocks as blocks_model
from pytest_tee.baseline.models import history as history_model
from pytest_tee.baseline.models import single as single_model
from pytest_tee.baseline.models.sessions import FALLBACK_NOISE_RATIO, HISTORY_LIMIT
from pytest_tee.baseline.models.single import rounds_could_decide
from pytest_tee.records import Verdict


def decide_blocks(benchmark: str, metric: str, blocks: list, threshold: float, *, higher_is_better: bool) -> Verdict:
    return blocks_model.decide(Evidence(benchmark, metric, blocks=blocks), Rule(threshold, higher_is_better))


def decide_history(
    benchmark: str, metric: str, base: list, head: list, history: list, threshold: float, *, higher_is_better: bool
) -> Verdict:
    evidence = Evidence(benchmark, metric, base=base, head=head, history=history)
    return history_model.decide(evidence, Rule(threshold, higher_is_better))


def decide_single(benchmark: str, metric: str, base: list, head: list, threshold: float, *, higher_is_better: bool):
    return single_model.decide(Evidence(benchmark, metric, base=base, head=head), Rule(threshold, higher_is_better))


def decide_stored(
    benchmark: str, metric: str, base: list, head: list, threshold: float, *, higher_is_better: bool, history: list
) -> Verdict:
    """What compare and the in-session gate do: the model chosen for the evidence."""
    evidence = Evidence(benchmark, metric, base=base, head=head, history=history)
    return models.decide(evidence, Rule(threshold, higher_is_better))


SIGMA_SESSION = 0.09
SIGMA_ROUND = 0.07
ROUNDS = 5  # --tee-rounds default


def sessions(
    rng: np.random.Generator,
    count: int,
    *,
    change: float = 0.0,
    rounds: int = ROUNDS,
    sigma_s: float = SIGMA_SESSION,
    sigma_r: float = SIGMA_ROUND,
    median: float = 100.0,
) -> list[list[float]]:
    """``count`` sessions of ``rounds`` rounds each, the true level ``median`` × (1 + change)."""
    levels = np.log(median * (1.0 + change)) + rng.normal(0.0, sigma_s, (count, 1))
    return np.exp(levels + rng.normal(0.0, sigma_r, (count, rounds))).tolist()


def abba(rng: np.random.Generator, blocks: int, change: float = 0.0, **kwargs: float) -> list[tuple]:
    return [(sessions(rng, 2, **kwargs), sessions(rng, 2, change=change, **kwargs)) for _ in range(blocks)]


def tps_blocks(blocks: list[tuple], threshold: float = 5.0) -> Verdict:
    return decide_blocks("bench", "decode_tps", blocks, threshold, higher_is_better=True)


def steady(level: float, n: int = 8, spread: float = 0.002) -> list[float]:
    """Rounds with a tiny, fixed spread around ``level`` (deterministic)."""
    return [level * (1.0 + spread * ((i % 3) - 1)) for i in range(n)]


# --------------------------------------------------------------------------------------------------------------
# ABBA blocks


def test_blocks_estimate_interval_and_p_follow_the_t_formula() -> None:
    rng = np.random.default_rng(1)
    blocks = abba(rng, 6, change=-0.2, sigma_s=0.03, sigma_r=0.02)
    verdict = tps_blocks(blocks)
    d = [
        statistics.fmean(math.log(statistics.median(s)) for s in head)
        - statistics.fmean(math.log(statistics.median(s)) for s in base)
        for base, head in blocks
    ]
    se = statistics.stdev(d) / math.sqrt(6)
    assert verdict.ratio == pytest.approx(math.exp(statistics.fmean(d)))
    assert verdict.ci95[0] == pytest.approx(math.exp(statistics.fmean(d) - t.ppf(0.975, 5) * se))
    assert verdict.detail.p_value == pytest.approx(t.cdf(statistics.fmean(d) / se, 5))
    assert (verdict.detail.se_log, verdict.detail.df) == (pytest.approx(se), 5.0)
    assert verdict.outcome == "regressed"
    assert (verdict.model, verdict.detail.sessions_base, verdict.detail.sessions_head, verdict.detail.n_base) == (
        "blocks",
        12,
        12,
        60,
    )
    assert "6 blocks of 4 sessions" in verdict.detail.method


def test_blocks_improved_and_lower_is_better() -> None:
    rng = np.random.default_rng(2)
    assert tps_blocks(abba(rng, 5, change=0.2, sigma_s=0.02, sigma_r=0.02)).outcome == "improved"
    slower = decide_blocks(
        "b", "ttft_s", abba(rng, 5, change=0.2, sigma_s=0.02, sigma_r=0.02), 10.0, higher_is_better=False
    )
    assert slower.outcome == "regressed"
    assert slower.ratio > 1.1


def test_blocks_unchanged_when_the_whole_interval_is_inside_the_limit() -> None:
    rng = np.random.default_rng(3)
    verdict = tps_blocks(abba(rng, 8, sigma_s=0.005, sigma_r=0.01))
    assert verdict.outcome == "unchanged"
    assert 0.95 <= verdict.ci95[0] <= verdict.ci95[1] <= 1.05


def test_fewer_than_three_blocks_with_both_sides_are_inconclusive() -> None:
    rng = np.random.default_rng(4)
    blocks = abba(rng, 3, change=-0.3)
    blocks[1] = (blocks[1][0], [[], []])  # the head sessions of block 2 measured nothing
    verdict = tps_blocks(blocks)
    assert verdict.outcome == "inconclusive"
    assert "2 block(s) with both sides measured" in verdict.note
    assert (verdict.hint.count, verdict.hint.unit) == (1, "blocks")
    assert math.isnan(verdict.ci95[0])


def test_blocks_with_unusable_values_are_inconclusive() -> None:
    rng = np.random.default_rng(5)
    blocks = abba(rng, 4)
    blocks[2][1][0][1] = float("nan")
    verdict = tps_blocks(blocks)
    assert verdict.outcome == "inconclusive"
    assert "head samples include non-finite values" in verdict.note


def test_inconclusive_blocks_say_how_many_more_blocks() -> None:
    rng = np.random.default_rng(6)
    verdict = tps_blocks(abba(rng, 4, change=-0.08))
    assert verdict.outcome == "inconclusive"
    assert verdict.hint is not None
    assert verdict.hint.unit == "blocks"
    assert verdict.hint.count >= 1
    assert f"about {verdict.hint.count} more blocks ({4 * verdict.hint.count} sessions)" in verdict.note


def test_block_hint_is_a_usable_guide() -> None:
    # A true 10 % drop at 4 blocks is mostly inconclusive; rerun with the hinted blocks, most are then decided.
    rng = np.random.default_rng(7)
    hinted = decided = 0
    for _ in range(60):
        verdict = tps_blocks(abba(rng, 4, change=-0.10))
        if verdict.outcome == "inconclusive" and verdict.hint is not None:
            hinted += 1
            decided += tps_blocks(abba(rng, 4 + verdict.hint.count, change=-0.10)).outcome == "regressed"
    assert hinted >= 30
    assert decided / hinted >= 0.6


# --------------------------------------------------------------------------------------------------------------
# One head session against stored runs


def test_history_measures_the_between_session_noise() -> None:
    rng = np.random.default_rng(8)
    history = sessions(rng, 6, sigma_s=0.02, sigma_r=0.003)
    head = sessions(rng, 1, change=-0.25, sigma_s=0.02, sigma_r=0.003)[0]
    verdict = decide_history("b", "decode_tps", history[0], head, history, 5.0, higher_is_better=True)
    sd = statistics.stdev(math.log(statistics.median(run)) for run in history)
    estimate = math.log(statistics.median(head)) - math.log(statistics.median(history[0]))
    assert (verdict.detail.se_log, verdict.detail.df) == (pytest.approx(sd * math.sqrt(2)), 5.0)
    assert verdict.ratio == pytest.approx(math.exp(estimate))
    assert verdict.ci95[1] == pytest.approx(math.exp(estimate + t.ppf(0.975, 5) * sd * math.sqrt(2)))
    assert verdict.outcome == "regressed"
    assert (verdict.model, verdict.detail.sessions_base, verdict.note) == ("history", 6, "")
    assert "from 6 stored runs" in verdict.detail.method


def test_history_uses_the_newest_ten_and_needs_three() -> None:
    rng = np.random.default_rng(9)
    history = sessions(rng, 14, sigma_r=0.01)
    head = sessions(rng, 1, sigma_r=0.01)[0]
    verdict = decide_stored("b", "decode_tps", history[0], head, 5.0, higher_is_better=True, history=history)
    assert (verdict.model, verdict.detail.df, verdict.detail.sessions_base) == (
        "history",
        HISTORY_LIMIT - 1,
        HISTORY_LIMIT,
    )
    with pytest.raises(ValueError, match="at least 3 stored runs"):
        decide_history("b", "decode_tps", history[0], head, history[:2], 5.0, higher_is_better=True)


def test_a_disturbed_session_is_not_vouched_for_by_a_quiet_history() -> None:
    # Stored runs within 1 % of each other; the head 25 % slower but with rounds scattered by 30 %: on the shared
    # VM such sessions were a neighbour's doing, not the code's. The allowance is then the rounds' (fallback) one.
    rng = np.random.default_rng(16)
    history = sessions(rng, 6, sigma_s=0.01, sigma_r=0.003)
    head = sessions(rng, 1, change=-0.25, sigma_s=0.0, sigma_r=0.3)[0]
    verdict = decide_history("b", "decode_tps", history[0], head, history, 5.0, higher_is_better=True)
    assert verdict.outcome == "inconclusive"
    assert verdict.detail.df == 8.0  # the two sessions' rounds: 5 + 5 − 2
    assert "the rounds of these two sessions imply more" in verdict.detail.method
    assert verdict.hint is not None
    assert verdict.hint.unit == "ab blocks"


def test_fallback_assumes_the_session_noise_and_says_so() -> None:
    base, head = steady(100.0, spread=0.01), steady(80.0, n=6, spread=0.01)
    verdict = decide_stored("b", "decode_tps", base, head, 5.0, higher_is_better=True, history=[base, steady(99.0)])
    log_base, log_head = np.log(base), np.log(head)
    pooled = math.sqrt((7 * np.var(log_base, ddof=1) + 5 * np.var(log_head, ddof=1)) / 12)
    factor = math.sqrt(2 * FALLBACK_NOISE_RATIO**2 + math.pi / 2 * (1 / 8 + 1 / 6))
    assert (verdict.model, verdict.detail.df) == ("single", 12.0)
    assert verdict.detail.se_log == pytest.approx(pooled * factor)
    assert verdict.outcome == "regressed"
    assert "between-session noise not measured (2 stored run(s) with this fingerprint, 3 needed)" in verdict.note


def test_single_session_verdicts_that_cannot_be_decided_point_to_ab() -> None:
    rng = np.random.default_rng(10)
    base, head = sessions(rng, 2, sigma_s=0.0, sigma_r=0.08)
    verdict = decide_single("b", "decode_tps", base, [value * 0.9 for value in head], 5.0, higher_is_better=True)
    assert verdict.outcome == "inconclusive"
    assert verdict.hint is not None
    assert verdict.hint.unit == "ab blocks"
    assert f"`pytest-tee ab --blocks {verdict.hint.count}` would likely decide it" in verdict.note
    assert "between-session noise not measured (1 stored run(s)" in verdict.note


@pytest.mark.parametrize(("n_base", "n_head"), [(2, 5), (5, 2), (0, 5)])
def test_single_session_needs_three_rounds(n_base: int, n_head: int) -> None:
    verdict = decide_single("b", "decode_tps", steady(10.0, n_base), steady(9.0, n_head), 5.0, higher_is_better=True)
    assert verdict.outcome == "inconclusive"
    assert "too few samples" in verdict.note
    assert (verdict.hint.count, verdict.hint.unit) == (3 - min(n_base, n_head), "rounds")


def test_more_head_rounds_cannot_decide_what_only_sessions_can() -> None:
    rng = np.random.default_rng(11)
    history = sessions(rng, 5)
    open_history = decide_stored(
        "b", "decode_tps", history[0], sessions(rng, 1)[0], 5.0, higher_is_better=True, history=history
    )
    assert open_history.outcome == "inconclusive"
    assert not rounds_could_decide(open_history, alpha=0.01)
    # Fallback, 40 base rounds, 5 head rounds: an estimate just short of deciding, which the head median's own
    # noise (the only part more head rounds shrink) stands between.
    base = [100.0 * math.exp(0.02 * (-1) ** i) for i in range(40)]
    head = [88.0 * math.exp(0.02 * (-1) ** i) for i in range(5)]  # −10.6 %: needs 10.8 % now, 10.1 % at best
    close = decide_single("b", "decode_tps", base, head, 5.0, higher_is_better=True)
    far = decide_single("b", "decode_tps", base, [value * 0.97 for value in head], 5.0, higher_is_better=True)
    assert (close.outcome, far.outcome) == ("inconclusive", "regressed")
    assert rounds_could_decide(close, alpha=0.01)
    assert not rounds_could_decide(far, alpha=0.01)


def test_verdicts_stay_plain_json_and_holm_applies_to_session_models() -> None:
    rng = np.random.default_rng(12)
    verdicts = [tps_blocks(abba(rng, 3, change=-0.12, sigma_s=0.004, sigma_r=0.01)) for _ in range(4)]
    document = json.loads(json.dumps([v.to_json() for v in verdicts], allow_nan=False))
    assert {"model", "hint", "detail"} <= set(document[0])
    assert {"method", "sessions_base", "sessions_head", "se_log", "df"} <= set(document[0]["detail"])
    assert [Verdict.from_json(item) for item in document] == verdicts
    assert document[0]["model"] == "blocks"
    assert all(v.outcome == "regressed" for v in verdicts)
    corrected = apply_family_correction(verdicts * 10, alpha=0.01)
    # 40 comparisons: Holm asks the smallest p to reach 0.01 / 40; a 3-block t-test with 2 df rarely can.
    assert any(v.outcome == "inconclusive" and "Holm" in v.note for v in corrected)
    assert all(v.detail.p_adjusted is not None and v.detail.p_adjusted >= v.detail.p_value for v in corrected)  # type: ignore[operator]


# --------------------------------------------------------------------------------------------------------------
# Error rates with a session random effect


def _block_rate(blocks: int, change: float, draws: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    return sum(tps_blocks(abba(rng, blocks, change=change)).outcome == "regressed" for _ in range(draws)) / draws


@pytest.mark.slow
def test_blocks_false_alarms_at_most_one_percent() -> None:
    # The t-test over independent blocks is exact under normal noise; simulated at the default block count.
    rate = _block_rate(DEFAULT_BLOCKS, 0.0, draws=3000, seed=13)
    print(f"blocks: A/A false alarms at {DEFAULT_BLOCKS} blocks, σ_s {SIGMA_SESSION}, σ_r {SIGMA_ROUND}: {rate:.2%}")
    assert rate <= 0.01


@pytest.mark.slow
def test_blocks_detect_a_ten_percent_drop_at_the_default_block_count() -> None:
    rate = _block_rate(DEFAULT_BLOCKS, -0.10, draws=2000, seed=14)
    print(f"blocks: detection of a 10 % drop at {DEFAULT_BLOCKS} blocks, σ_s {SIGMA_SESSION}: {rate:.1%}")
    assert rate >= 0.95


def _stored_rate(stored: int, draws: int, seed: int, **noise: float) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        history = sessions(rng, stored, **noise)
        head = sessions(rng, 1, **noise)[0]
        verdict = decide_stored("b", "decode_tps", history[0], head, 5.0, higher_is_better=True, history=history)
        hits += verdict.outcome == "regressed"
    return hits / draws


@pytest.mark.slow
@pytest.mark.parametrize("stored", [4, 10])
def test_history_false_alarms_at_most_one_percent(stored: int) -> None:
    rate = _stored_rate(stored, draws=4000, seed=15 + stored)
    print(f"history: A/A false alarms with {stored} stored runs: {rate:.2%}")
    assert rate <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("rounds", [5, 20])
def test_fallback_false_alarms_stay_below_one_percent_when_sessions_vary_more_than_rounds(rounds: int) -> None:
    # Sessions 1.2 × as noisy as rounds (as measured on the shared VM), one stored run: the fallback's assumption
    # (1.5 ×) must cover it.
    rate = _stored_rate(1, draws=4000, seed=20 + rounds, sigma_s=1.2 * SIGMA_ROUND, sigma_r=SIGMA_ROUND, rounds=rounds)
    print(f"fallback: A/A false alarms at {rounds} rounds with σ_s = 1.2 σ_r: {rate:.2%}")
    assert rate <= 0.01
