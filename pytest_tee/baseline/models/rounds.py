"""The rounds model: rounds of base and head taken interleaved in one process, treated as exchangeable.

Ratio of medians with a seeded percentile-bootstrap 95 % CI, and a one-sided Mann–Whitney U test. Valid only when
the rounds of both sides come from one process with interleaved rounds: two separate sessions differ by more than
their rounds do (docs/baselines-and-gating.md measured 8–12 % false alarms where 1 % was meant), so runs of
separate sessions are judged by the session-level models.

numpy and scipy are imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_tee.baseline.models.base import Evidence, HintContext, Rule
from pytest_tee.baseline.models.outcome import classify
from pytest_tee.records import Hint, ModelDetail, Verdict

NAME = "rounds"
MIN_SAMPLES = 3
MAX_ROUNDS_HINT = 10_000
HINT_POWER = 0.8
SEED = 0
RESAMPLES = 2000  # plenty for a 95 % percentile interval; the false-alarm simulations run it thousands of times


def decide(evidence: Evidence, rule: Rule) -> Verdict:
    """``regressed``: the CI excludes "no change" on the bad side, the estimate is worse than the limit, and the
    one-sided Mann–Whitney p is at most α. Fewer than 3 samples on a side, or samples that are not positive, are
    inconclusive with a note. Deterministic.
    """
    import numpy as np

    from pytest_tee.stats import mann_whitney_p, ratio_of_medians

    base = np.asarray(evidence.base, dtype=float)
    head = np.asarray(evidence.head, dtype=float)
    nb, nh = int(base.size), int(head.size)
    base_median = float(np.median(base)) if nb else math.nan
    head_median = float(np.median(head)) if nh else math.nan
    reason, rounds_needed = _untestable(base, head)
    common: dict[str, Any] = {"threshold_pct": rule.threshold_pct, "higher_is_better": rule.higher_is_better}
    if reason:
        ratio = head_median / base_median if nb and nh and base_median > 0 else math.nan
        return Verdict(
            evidence.benchmark,
            evidence.metric,
            base_median,
            head_median,
            ratio,
            (math.nan, math.nan),
            "inconclusive",
            model=NAME,
            detail=ModelDetail(method=f"{NAME}: not tested", n_base=nb, n_head=nh),
            hint=Hint(rounds_needed, "rounds") if rounds_needed else None,
            note=reason,
            **common,
        )
    ratio = head_median / base_median
    estimate = ratio_of_medians(
        head, base, seed=SEED, name=f"{evidence.benchmark}|{evidence.metric}", resamples=RESAMPLES
    )
    ci95 = estimate.ci95 if estimate is not None and estimate.ci95 is not None else (math.nan, math.nan)
    p_value = mann_whitney_p(base, head, head_lower=ratio < 1.0)  # tested in the direction of the estimate
    method = f"rounds: {nb} vs {nh} rounds treated as exchangeable (bootstrap CI, Mann–Whitney)"
    verdict = Verdict(
        evidence.benchmark,
        evidence.metric,
        base_median,
        head_median,
        ratio,
        ci95,
        "inconclusive",
        model=NAME,
        detail=ModelDetail(method=method, n_base=nb, n_head=nh, p_value=p_value),
        **common,
    )
    return classify(verdict, hint, standing_note, alpha=rule.alpha)


def standing_note(verdict: Verdict) -> str:
    return ""


def _untestable(base: Any, head: Any) -> tuple[str, int | None]:
    """Why these samples cannot be tested (and the rounds that would fix it), or ("", None)."""
    import numpy as np

    for side, data in (("base", base), ("head", head)):
        if data.size and not np.all(np.isfinite(data)):
            return f"{side} samples include non-finite values; nothing can be decided", None
        if data.size and np.any(data <= 0):
            return f"{side} samples include values ≤ 0; a ratio of medians needs positive values", None
    fewest = min(base.size, head.size)
    if fewest < MIN_SAMPLES:
        return (
            f"too few samples (base {base.size}, head {head.size}); the gate needs at least {MIN_SAMPLES} "
            "rounds per side",
            MIN_SAMPLES - fewest,
        )
    return "", None


def hint(verdict: Verdict, context: HintContext) -> tuple[Hint | None, str]:
    """About how many more rounds per side would decide it: with ~80 % probability if the current estimate
    were the true change (the estimate from few rounds is itself uncertain, so this is a guide, not a promise).

    The CI half-width and the test's z-score both scale ~1/√n, so the rounds needed are today's rounds times
    (today's half-width / the half-width that decides)², with room kept for the estimate's own scatter.
    """
    from scipy.stats import norm

    z_ci, z_power = norm.isf(0.025), norm.ppf(HINT_POWER)
    keep = ((z_ci + z_power) / z_ci) ** 2  # a CI that must clear a bound by one estimate-scatter more
    nb, nh = verdict.detail.n_base or 0, verdict.detail.n_head or 0
    log_ratio = math.log(verdict.ratio)
    log_low, log_high = (math.log(bound) for bound in verdict.ci95)
    limit = (verdict.threshold_pct or 0.0) / 100.0
    growth: list[float] = []  # factors by which the rounds must grow, one per unmet condition
    floor = 0
    room_low = room_high = 1.0
    p = context.p_value
    if context.beyond:
        reason = f"a {abs(verdict.change_pct):.1f} % change beyond ±{verdict.threshold_pct:g} % that is not yet certain"
        if not context.excludes_one:  # the CI must clear "no change" on the side facing it
            width = log_high - log_ratio if log_ratio < 0 else log_ratio - log_low
            growth.append((width / abs(log_ratio)) ** 2 * keep)
        if p is not None and p > context.alpha:  # the test must reach alpha
            z_now = norm.isf(min(p, 0.5))
            growth.append(((norm.isf(context.alpha) + z_power) / z_now) ** 2 if z_now > 0 else math.inf)
            floor = _rounds_for_attainable_p(context.family_alpha)  # Holm's first step compares the raw p with α/m
    else:
        reason = f"the CI reaches beyond ±{verdict.threshold_pct:g} %"
        room_low, room_high = log_ratio - math.log(1.0 - limit), math.log(1.0 + limit) - log_ratio
        if room_low <= 0 or room_high <= 0:
            growth.append(math.inf)
        else:
            widths = ((log_ratio - log_low) / room_low, (log_high - log_ratio) / room_high)
            growth.append(max(widths) ** 2 * keep)
    effective = 2.0 / (1.0 / nb + 1.0 / nh)  # equal per-side rounds that would give today's CI width
    target = effective * max(growth, default=1.0)
    if not math.isfinite(target) or target > MAX_ROUNDS_HINT:
        if not context.beyond and min(room_low, room_high) <= 0:
            return None, f"{reason}; the estimate sits at the threshold, so more rounds are unlikely to decide it"
        return None, (
            f"{reason}; at this noise level deciding it would take more than {MAX_ROUNDS_HINT} rounds per side "
            "(reduce the noise: pin threads, quiet the runner, or compare on one runner with pytest-tee ab)"
        )
    more = max(1, math.ceil(target) - min(nb, nh), floor - min(nb, nh))
    return Hint(more, "rounds"), f"{reason}; about {more} more rounds per side would likely decide it"


def _rounds_for_attainable_p(alpha: float) -> int:
    """Fewest equal per-side rounds whose best one-sided Mann–Whitney p, 1 / C(2n, n), is at most alpha."""
    n = 1
    while 1.0 / math.comb(2 * n, n) > alpha:
        n += 1
    return n
