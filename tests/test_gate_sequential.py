"""The sequential block rule: α-spending boundaries, sequential p-values, repeated CIs, and decide_blocks' use of them.

Error rates over many simulated runs are in benchmarks/tooling/sequential_simulation.py (20,000 runs per case);
here the pieces are checked against published values and against each other.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_tee.baseline import sequential
from pytest_tee.baseline.gate import apply_family_correction
from pytest_tee.baseline.models import Evidence, Rule
from pytest_tee.baseline.models import blocks as blocks_model
from pytest_tee.baseline.models.base import DEFAULT_ALPHA
from pytest_tee.records import Verdict


def decide_blocks(
    benchmark: str,
    metric: str,
    blocks: list,
    threshold: float,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
    max_blocks: int | None = None,
) -> Verdict:
    evidence = Evidence(benchmark, metric, blocks=blocks, max_blocks=max_blocks)
    return blocks_model.decide(evidence, Rule(threshold, higher_is_better, alpha))


def test_obrien_fleming_boundaries_match_published_values() -> None:
    # Lan–DeMets O'Brien–Fleming-type, one-sided 2.5 %, five equally spaced looks (Jennison & Turnbull 2000,
    # Table 7.6; also R ldbounds): 4.877, 3.357, 2.680, 2.290, 2.031.
    bounds = sequential.z_boundaries((1, 2, 3, 4, 5), 5, 0.025)
    assert bounds == pytest.approx((4.877, 3.357, 2.680, 2.290, 2.031), abs=2e-3)


def test_spending_functions_spend_all_of_alpha_by_the_maximum() -> None:
    assert sequential.obrien_fleming(1.0, 0.01) == pytest.approx(0.01)
    assert sequential.pocock(1.0, 0.01) == pytest.approx(0.01)
    assert sequential.obrien_fleming(1 / 6, 0.01) < 1e-8 < sequential.pocock(1 / 6, 0.01)


def test_looks_beyond_the_maximum_spend_nothing_more() -> None:
    bounds = sequential.z_boundaries((3, 4, 5), 4, 0.01)
    assert math.isinf(bounds[-1])


def test_sequential_p_is_the_level_at_which_the_design_first_crosses() -> None:
    p_values = [0.2, 0.01, 0.004, 0.0008, 0.0009]
    looks = sequential.looks_until(2 + len(p_values))
    p = sequential.sequential_p(p_values, 18)
    for level in (p * 0.98, p * 1.02):
        nominal = sequential.nominal_levels(looks, 18, level)
        assert any(a <= b for a, b in zip(p_values, nominal, strict=True)) == (level > p)
    # Evidence can only accumulate: adding a weaker look never raises the sequential p.
    assert sequential.sequential_p([*p_values, 0.3], 18) <= p * (1 + 1e-6)


def test_a_look_is_stricter_than_the_fixed_test_except_at_the_maximum() -> None:
    rng = np.random.default_rng(3)
    d = list(rng.normal(-0.08, 0.06, 18))
    early = sequential.look(d[:6], 18, 0.01)
    final = sequential.look(d, 18, 0.01)
    fixed_t = 2.567  # t(17 df) one-sided 1 %
    assert early.t_boundary > 10
    assert fixed_t < final.t_boundary < 3.0
    fixed_half = 2.110 * final.se  # t(17 df) 97.5 %
    assert final.ci95[1] - final.estimate > fixed_half
    assert final.ci95[0] < final.estimate < final.ci95[1]
    with pytest.raises(ValueError, match="first look"):
        sequential.look(d[:2], 18, 0.01)


def blocks_of(differences: list[float]) -> list[tuple[list[list[float]], list[list[float]]]]:
    return [([[100.0] * 3], [[100.0 * math.exp(d)] * 3]) for d in differences]


def test_decide_blocks_spends_alpha_over_the_looks() -> None:
    # Three blocks around a 20 % drop: decided when they are all there is, not when 15 more may follow.
    d = [-0.20, -0.26, -0.17]
    alone = decide_blocks("t", "decode_tps", blocks_of(d), 5.0, higher_is_better=True, max_blocks=3)
    early = decide_blocks("t", "decode_tps", blocks_of(d), 5.0, higher_is_better=True, max_blocks=18)
    assert alone.outcome == "regressed"
    assert early.outcome == "inconclusive"
    assert early.detail.p_value is not None
    assert alone.detail.p_value is not None
    assert early.detail.p_value > alone.detail.p_value
    assert "sequential" in early.detail.method
    assert "block 3 of at most 18" in early.detail.method


def test_decide_blocks_can_stop_early_on_a_large_drop_and_on_no_change() -> None:
    rng = np.random.default_rng(0)
    drop = [float(x) for x in rng.normal(math.log(0.6), 0.08, 8)]
    outcomes = [
        decide_blocks("t", "m", blocks_of(drop[:k]), 5.0, higher_is_better=True, max_blocks=18).outcome
        for k in range(3, 9)
    ]
    assert "regressed" in outcomes
    assert outcomes[-1] == "regressed"
    quiet = [float(x) for x in rng.normal(0.0, 0.004, 6)]
    verdict = decide_blocks("t", "m", blocks_of(quiet), 5.0, higher_is_better=True, max_blocks=18)
    assert verdict.outcome == "unchanged"


def test_holm_applies_to_sequential_p_values() -> None:
    rng = np.random.default_rng(5)
    d = [float(x) for x in rng.normal(-0.09, 0.06, 18)]
    one = decide_blocks("a", "m", blocks_of(d), 5.0, higher_is_better=True, max_blocks=18)
    assert one.outcome == "regressed"
    assert one.detail.p_value is not None
    family = apply_family_correction([one] * 40, alpha=0.01)
    assert family[0].detail.p_adjusted == pytest.approx(min(1.0, one.detail.p_value * 40))
    assert (family[0].outcome == "regressed") == (one.detail.p_value * 40 <= 0.01)
