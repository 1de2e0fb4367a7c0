"""The verdict record and the rule that turns an estimate, its CI and a p-value into an outcome.

Which model estimates the change is chosen by the caller: the session-level models in ``sessions.py`` (ABBA
blocks, a head session against stored runs, one session a side) for everything the gate judges, because sessions
of the same code differ by more than rounds do; or ``decide`` here, the round-level model (ratio of medians with a
seeded percentile-bootstrap 95 % CI, plus a one-sided Mann–Whitney U test), which assumes that the rounds of base
and head are exchangeable — true only for rounds taken in one process, interleaved. ``classify`` is shared: the
same outcome rule whatever the model, and the "how much more data" hint of the model that judged it.
``docs/baselines-and-gating.md`` explains the choices and the measured error rates.

numpy and scipy are imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive")
DEFAULT_ALPHA = 0.01  # one-sided, family-wise over the verdicts of one comparison (Holm)
DEFAULT_RESAMPLES = 2000
MIN_SAMPLES = 3
MAX_ROUNDS_HINT = 10_000
HINT_POWER = 0.8
_EDGE = 1e-9  # an estimate exactly on the threshold is not beyond it, whatever the float rounding


@dataclass
class Verdict:
    """The gate's answer for one benchmark and metric.

    ``base``/``head`` are the levels compared (the median of the rounds of one session; with several sessions a
    side, the geometric mean of their medians), ``ratio`` = the estimated head / base, ``ci95`` its 95 % interval.
    ``outcome`` is ``regressed``, ``improved``, ``unchanged`` or ``inconclusive``. ``model`` names the model that
    judged it (``blocks``, ``history``, ``single`` or ``rounds``; ``method`` says it in words). ``rounds_hint``
    counts ``hint_unit``s: more rounds per side, more blocks, more stored runs, or (``ab blocks``) the blocks of a
    ``pytest-tee ab`` run that would likely decide an inconclusive verdict.
    """

    benchmark: str
    metric: str
    base: float
    head: float
    ratio: float
    ci95: tuple[float, float]
    outcome: str
    threshold_pct: float | None = None
    n_base: int | None = None
    n_head: int | None = None
    higher_is_better: bool | None = None
    rounds_hint: int | None = None  # inconclusive: about this many more ``hint_unit``s would likely decide it
    note: str = ""
    p_value: float | None = None  # one-sided p (t or Mann–Whitney) in the direction of the estimated change
    p_adjusted: float | None = None  # p_value after Holm's correction over the comparison's verdicts
    model: str = "rounds"  # "blocks", "history", "single" (session-level) or "rounds" (round-level, one process)
    method: str = ""  # the model in words, with its numbers (sessions, noise, degrees of freedom)
    hint_unit: str = "rounds"  # what rounds_hint counts: "rounds", "blocks", "stored runs" or "ab blocks"
    sessions_base: int | None = None  # base-side sessions behind the verdict (history: the stored runs used)
    sessions_head: int | None = None
    se_log: float | None = None  # standard error of log(ratio) (session-level models)
    df: float | None = None  # degrees of freedom of the t distribution used (session-level models)

    @property
    def change_pct(self) -> float:
        """Signed change of the median, head against base, in percent (+ means the number went up)."""
        return (self.ratio - 1.0) * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "base": _finite_or_none(self.base),
            "head": _finite_or_none(self.head),
            "ratio": _finite_or_none(self.ratio),
            "ci95": [_finite_or_none(self.ci95[0]), _finite_or_none(self.ci95[1])],
            "change_pct": _finite_or_none(self.change_pct),
            "outcome": self.outcome,
            "threshold_pct": self.threshold_pct,
            "n_base": self.n_base,
            "n_head": self.n_head,
            "higher_is_better": self.higher_is_better,
            "rounds_hint": self.rounds_hint,
            "note": self.note,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "model": self.model,
            "method": self.method,
            "hint_unit": self.hint_unit,
            "sessions_base": self.sessions_base,
            "sessions_head": self.sessions_head,
            "se_log": _finite_or_none(self.se_log),
            "df": self.df,
        }


def _finite_or_none(value: float | None) -> float | None:
    # JSON has no NaN; "no value" is null.
    return float(value) if value is not None and math.isfinite(value) else None


def decide(
    benchmark: str,
    metric: str,
    base_samples: Sequence[float],
    head_samples: Sequence[float],
    threshold_pct: float,
    *,
    higher_is_better: bool,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
) -> Verdict:
    """The round-level verdict: per-round samples of base and head treated as exchangeable.

    Valid only when the rounds of both sides come from one process with interleaved rounds; two separate sessions
    differ by more than their rounds do (use ``sessions.decide_stored`` or ``sessions.decide_blocks`` for them).
    ``regressed``: the CI excludes "no change" on the bad side, the estimate is worse than ``threshold_pct``,
    and the one-sided Mann–Whitney p is at most ``alpha``. ``improved``: the same on the good side.
    ``unchanged``: the whole CI lies within ±``threshold_pct``. ``inconclusive``: anything else, with
    ``rounds_hint``. Fewer than 3 samples on a side, or samples that are not positive, are inconclusive with a
    note. Deterministic for a given ``seed``.
    """
    import numpy as np

    base = np.asarray(base_samples, dtype=float)
    head = np.asarray(head_samples, dtype=float)
    nb, nh = int(base.size), int(head.size)
    common = {"threshold_pct": threshold_pct, "n_base": nb, "n_head": nh, "higher_is_better": higher_is_better}
    base_median = float(np.median(base)) if nb else math.nan
    head_median = float(np.median(head)) if nh else math.nan
    reason, hint = _untestable(base, head)
    if reason:
        ratio = head_median / base_median if nb and nh and base_median > 0 else math.nan
        nan_ci = (math.nan, math.nan)
        return Verdict(
            benchmark,
            metric,
            base_median,
            head_median,
            ratio,
            nan_ci,
            "inconclusive",
            rounds_hint=hint,
            note=reason,
            **common,
        )
    ci95 = bootstrap_ratio_ci(base, head, seed=seed, resamples=resamples)
    ratio = head_median / base_median
    p_value = mann_whitney_p(base, head, head_lower=ratio < 1.0)  # tested in the direction of the estimate
    method = f"rounds: {nb} vs {nh} rounds treated as exchangeable (bootstrap CI, Mann–Whitney)"
    verdict = Verdict(
        benchmark,
        metric,
        base_median,
        head_median,
        ratio,
        ci95,
        "inconclusive",
        p_value=p_value,
        method=method,
        **common,
    )
    return classify(verdict, alpha=alpha)


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


def _is_worse(ratio: float, higher_is_better: bool) -> bool:
    return ratio < 1.0 if higher_is_better else ratio > 1.0


def bootstrap_ratio_ci(
    base: Sequence[float], head: Sequence[float], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES
) -> tuple[float, float]:
    """Percentile-bootstrap 95 % CI of median(head) / median(base), each arm resampled on its own."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base_arr = np.asarray(base, dtype=float)
    head_arr = np.asarray(head, dtype=float)
    base_medians = np.median(base_arr[rng.integers(0, base_arr.size, (resamples, base_arr.size))], axis=1)
    head_medians = np.median(head_arr[rng.integers(0, head_arr.size, (resamples, head_arr.size))], axis=1)
    low, high = np.percentile(head_medians / base_medians, [2.5, 97.5])
    return float(low), float(high)


def mann_whitney_p(base: Sequence[float], head: Sequence[float], *, head_lower: bool) -> float:
    """One-sided Mann–Whitney U p-value that head's values are lower (``head_lower``) or higher than base's.

    scipy picks the exact null distribution for small samples without ties, else the normal approximation.
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(head, base, alternative="less" if head_lower else "greater").pvalue)


def classify(
    verdict: Verdict, *, alpha: float = DEFAULT_ALPHA, p_value: float | None = None, family_size: int = 1
) -> Verdict:
    """The verdict's outcome (and hint) from its ratio, CI and p-value — the same rule for every model.

    ``p_value`` overrides ``verdict.p_value`` (used with the Holm-adjusted p; ``family_size`` is then the
    number of comparisons, for the hint). Verdicts that could not be tested (no CI) are returned as they are.
    """
    low, high = verdict.ci95
    if not (math.isfinite(low) and math.isfinite(high)) or verdict.threshold_pct is None:
        return verdict
    p = verdict.p_value if p_value is None else p_value
    higher = bool(verdict.higher_is_better)
    limit = verdict.threshold_pct / 100.0
    ratio = verdict.ratio
    change = ratio - 1.0
    beyond = abs(change) > limit + _EDGE
    excludes_one = high < 1.0 if change < 0 else low > 1.0
    significant = p is not None and p <= alpha
    standing = _standing_note(verdict)
    if beyond and excludes_one and significant:
        outcome = "regressed" if _is_worse(ratio, higher) else "improved"
        return replace(verdict, outcome=outcome, rounds_hint=None, note=standing)
    if 1.0 - limit - _EDGE <= low and high <= 1.0 + limit + _EDGE:
        return replace(verdict, outcome="unchanged", rounds_hint=None, note=standing)
    floor_alpha = alpha / max(1, family_size)
    if verdict.model == "rounds":
        hint, note = _rounds_hint(
            verdict, beyond=beyond, excludes_one=excludes_one, p=p, alpha=alpha, floor_alpha=floor_alpha
        )
        unit = "rounds"
    else:
        from pytest_tee.baseline.sessions import session_hint

        hint, unit, note = session_hint(verdict, beyond=beyond, alpha=floor_alpha)
    note = "; ".join(part for part in (note, standing) if part)
    return replace(verdict, outcome="inconclusive", rounds_hint=hint, hint_unit=unit, note=note)


def _standing_note(verdict: Verdict) -> str:
    """What every verdict of this model must say, whatever its outcome (the unmeasured session noise)."""
    if verdict.model != "single":
        return ""
    from pytest_tee.baseline.sessions import unmeasured_noise_note

    return unmeasured_noise_note(verdict.sessions_base or 1)


def _rounds_hint(
    verdict: Verdict, *, beyond: bool, excludes_one: bool, p: float | None, alpha: float, floor_alpha: float
) -> tuple[int | None, str]:
    """About how many more rounds per side would decide it: with ~80 % probability if the current estimate
    were the true change (the estimate from few rounds is itself uncertain, so this is a guide, not a promise).

    The CI half-width and the test's z-score both scale ~1/√n, so the rounds needed are today's rounds times
    (today's half-width / the half-width that decides)², with room kept for the estimate's own scatter.
    """
    from scipy.stats import norm

    z_ci, z_power = norm.isf(0.025), norm.ppf(HINT_POWER)
    keep = ((z_ci + z_power) / z_ci) ** 2  # a CI that must clear a bound by one estimate-scatter more
    nb, nh = verdict.n_base or 0, verdict.n_head or 0
    log_ratio = math.log(verdict.ratio)
    log_low, log_high = (math.log(bound) for bound in verdict.ci95)
    limit = (verdict.threshold_pct or 0.0) / 100.0
    growth: list[float] = []  # factors by which the rounds must grow, one per unmet condition
    floor = 0
    room_low = room_high = 1.0
    if beyond:
        reason = f"a {abs(verdict.change_pct):.1f} % change beyond ±{verdict.threshold_pct:g} % that is not yet certain"
        if not excludes_one:  # the CI must clear "no change" on the side facing it
            width = log_high - log_ratio if log_ratio < 0 else log_ratio - log_low
            growth.append((width / abs(log_ratio)) ** 2 * keep)
        if p is not None and p > alpha:  # the test must reach alpha
            z_now = norm.isf(min(p, 0.5))
            growth.append(((norm.isf(alpha) + z_power) / z_now) ** 2 if z_now > 0 else math.inf)
            floor = _rounds_for_attainable_p(floor_alpha)  # Holm's first step compares the raw p with α/m
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
        if not beyond and min(room_low, room_high) <= 0:
            return None, f"{reason}; the estimate sits at the threshold, so more rounds are unlikely to decide it"
        return None, (
            f"{reason}; at this noise level deciding it would take more than {MAX_ROUNDS_HINT} rounds per side "
            "(reduce the noise: pin threads, quiet the runner, or compare on one runner with pytest-tee ab)"
        )
    more = max(1, math.ceil(target) - min(nb, nh), floor - min(nb, nh))
    return more, f"{reason}; about {more} more rounds per side would likely decide it"


def _rounds_for_attainable_p(alpha: float) -> int:
    """Fewest equal per-side rounds whose best one-sided Mann–Whitney p, 1 / C(2n, n), is at most alpha."""
    n = 1
    while 1.0 / math.comb(2 * n, n) > alpha:
        n += 1
    return n


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    import numpy as np

    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return [float(value) for value in adjusted]


def apply_family_correction(verdicts: Sequence[Verdict], *, alpha: float = DEFAULT_ALPHA) -> list[Verdict]:
    """Re-judge the verdicts with Holm-adjusted p-values, so that the chance of any false regression among all
    of them stays at ``alpha``. Verdicts without a p-value (from a hook, or too short) are left as they are.
    """
    tested = [index for index, verdict in enumerate(verdicts) if verdict.p_value is not None]
    adjusted = holm_adjust([verdicts[index].p_value for index in tested])  # type: ignore[misc]
    result = list(verdicts)
    for index, p_adj in zip(tested, adjusted, strict=True):
        judged = classify(
            replace(verdicts[index], p_adjusted=p_adj), alpha=alpha, p_value=p_adj, family_size=len(tested)
        )
        if judged.outcome != verdicts[index].outcome and len(tested) > 1:
            holm = f"not significant after Holm's correction over {len(tested)} comparisons"
            judged = replace(judged, note=f"{judged.note}; {holm}" if judged.note else holm)
        result[index] = judged
    return result


def is_gate_look(rounds_done: int, first_look: int) -> bool:
    """Whether adaptive rounds should consult the gate after ``rounds_done`` head rounds: at ``first_look``,
    then each time the count doubles (5, 10, 20, 40, …).

    Stopping at the first look that shows "regressed" gives noise a chance at every look; looking after every
    round roughly doubled the A/A false-alarm rate in our simulation, looking at doublings kept it at the
    fixed-rounds rate (see docs/baselines-and-gating.md).
    """
    if first_look < 1 or rounds_done < first_look or rounds_done % first_look:
        return False
    multiple = rounds_done // first_look
    return multiple & (multiple - 1) == 0
