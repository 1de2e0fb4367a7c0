"""What the session-level models (single, history, blocks) share: a session is the unit, not a round.

Two sessions of the same code on a shared machine differ by more than the rounds inside either of them (on a
shared 2-vCPU VM session medians varied with a log SD of ~0.09, rounds within a session ~0.07). Every
session-level model works on log *session levels* — a session's level is the median of its rounds — and weighs
the difference of levels against the between-session noise, with a t distribution for the uncertainty of that
noise; the outcome rule is ``outcome.classify``.

numpy and scipy are imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from pytest_tee.baseline.models.base import Evidence, HintContext, Rule
from pytest_tee.baseline.models.outcome import HintRule, StandingNote, classify
from pytest_tee.records import Hint, ModelDetail, Verdict

# Sessions on the shared 2-vCPU VM varied 1.2 × as much as their rounds (session log SD 0.089 against a median
# per-session round SD of 0.074). Assuming exactly that would put the false-alarm rate at α on such a runner and
# above it on a worse one; 1.5 × kept it at 0.2–0.3 % in simulation with sessions 1.2 × as noisy as rounds.
FALLBACK_NOISE_RATIO = 1.5
MIN_BLOCKS = 3
MIN_STORED_RUNS = 3
HISTORY_LIMIT = 10  # stored runs used for the between-session SD: recent enough to describe today's machine
MIN_ROUNDS = 3  # per session, for the single-session models (the fallback needs a round-to-round SD)
MAX_BLOCKS_HINT = 400
HINT_POWER = 0.8
# The median of n rounds varies with variance ≈ (π/2) σ² / n (its asymptotic efficiency against the mean).
MEDIAN_VARIANCE_FACTOR = math.pi / 2
QUIET = " (reduce the noise: pin threads, quiet the runner)"


def log_level(samples: Iterable[float]) -> float:
    """A session's level on the log scale: the log of the median of its rounds."""
    return math.log(statistics.median(float(value) for value in samples))


def no_standing_note(verdict: Verdict) -> str:
    return ""


def t_verdict(
    evidence: Evidence,
    rule: Rule,
    base_value: float,
    head_value: float,
    *,
    estimate: float,
    se: float,
    df: float,
    model: str,
    detail: ModelDetail,
    hint_rule: HintRule,
    standing_note: StandingNote = no_standing_note,
    sequential: tuple[float, tuple[float, float]] | None = None,
) -> Verdict:
    """Ratio, 95 % t-interval and one-sided p (in the direction of the estimate) of a log-scale estimate.

    ``sequential``: the p-value and log-scale 95 % interval of a sequential design's look, used instead of the
    fixed-sample ones (they stay valid however often the run looked).
    """
    from dataclasses import replace

    from scipy.special import stdtr, stdtrit  # the t distribution's ufuncs: far quicker than scipy.stats.t

    if sequential is not None:
        p_value, (low, high) = sequential
        ci95 = (math.exp(low), math.exp(high))
    elif se > 0:
        half = float(stdtrit(df, 0.975)) * se
        ci95 = (math.exp(estimate - half), math.exp(estimate + half))
        p_value = float(stdtr(df, -abs(estimate) / se))
    else:  # no spread at all (identical sessions): the estimate is what it is
        ci95 = (math.exp(estimate), math.exp(estimate))
        p_value = 0.0 if estimate != 0 else 1.0
    verdict = Verdict(
        evidence.benchmark,
        evidence.metric,
        base_value,
        head_value,
        math.exp(estimate),
        ci95,
        "inconclusive",
        threshold_pct=rule.threshold_pct,
        model=model,
        higher_is_better=rule.higher_is_better,
        detail=replace(detail, p_value=p_value, se_log=se, df=float(df)),
    )
    return classify(verdict, hint_rule, standing_note, alpha=rule.alpha)


def unusable(side: str, values: Any) -> str:
    import numpy as np

    if not np.all(np.isfinite(values)):
        return f"{side} samples include non-finite values; nothing can be decided"
    if np.any(values <= 0):
        return f"{side} samples include values ≤ 0; a ratio needs positive values"
    return ""


def two_session_problem(base: Any, head: Any) -> str:
    for side, values in (("base", base), ("head", head)):
        if values.size and (problem := unusable(side, values)):
            return problem
    if min(base.size, head.size) < MIN_ROUNDS:
        return (
            f"too few samples (base {base.size}, head {head.size}); the gate needs at least {MIN_ROUNDS} rounds per "
            "session"
        )
    return ""


def untested(
    evidence: Evidence,
    rule: Rule,
    note: str,
    *,
    model: str,
    base: Any = None,
    head: Any = None,
    stored_runs: int | None = None,
) -> Verdict:
    import numpy as np

    nb = int(base.size) if base is not None else None
    nh = int(head.size) if head is not None else None
    base_value = float(np.median(base)) if nb else math.nan
    head_value = float(np.median(head)) if nh else math.nan
    ratio = head_value / base_value if nb and nh and base_value > 0 else math.nan
    short = nb is not None and nh is not None and min(nb, nh) < MIN_ROUNDS and "too few" in note
    return Verdict(
        evidence.benchmark,
        evidence.metric,
        base_value,
        head_value,
        ratio,
        (math.nan, math.nan),
        "inconclusive",
        threshold_pct=rule.threshold_pct,
        model=model,
        higher_is_better=rule.higher_is_better,
        detail=ModelDetail(method=f"{model}: not tested", n_base=nb, n_head=nh, sessions_base=stored_runs),
        hint=Hint(MIN_ROUNDS - min(nb or 0, nh or 0), "rounds") if short else None,
        note=note,
    )


def pooled_round_sd(base: Any, head: Any) -> tuple[float, int]:
    """The pooled round-to-round SD of two sessions on the log scale, and its degrees of freedom."""
    import numpy as np

    nb, nh = int(base.size), int(head.size)
    df = nb + nh - 2
    pooled = math.sqrt(((nb - 1) * np.var(np.log(base), ddof=1) + (nh - 1) * np.var(np.log(head), ddof=1)) / df)
    return pooled, df


def single_se_factor(n_base: float, n_head: float) -> float:
    """SE of the difference of two session levels per unit of round-to-round SD, under the fallback's assumption."""
    return math.sqrt(2.0 * FALLBACK_NOISE_RATIO**2 + MEDIAN_VARIANCE_FACTOR * (1.0 / n_base + 1.0 / n_head))


# ------------------------------------------------------------------------------------------------- hints


def decides(
    estimate: float, se: Any, df: Any, *, beyond: bool, rooms: tuple[float, float], alpha: float, power: bool = True
) -> Any:
    """Whether a verdict with standard errors ``se`` and ``df`` would be decided at the current estimate — with
    ``power``, likely decided (80 % power if the current estimate were the true change). Elementwise over numpy
    arrays of candidates.
    """
    import numpy as np
    from scipy.special import ndtri, stdtrit

    margin = float(ndtri(HINT_POWER)) if power else 0.0
    if beyond:  # the CI must clear "no change" and the test must reach alpha
        needed = np.maximum(stdtrit(df, 0.975), stdtrit(df, 1.0 - alpha)) + margin
        return abs(estimate) >= needed * se
    needed = stdtrit(df, 0.975) + margin  # the whole CI must fit inside ±threshold
    return needed * se <= min(rooms)


class HintSearch:
    """The shared arithmetic of the session-level hints: the estimate, the room to the limits, the reason."""

    def __init__(self, verdict: Verdict, context: HintContext) -> None:
        self.verdict = verdict
        self.context = context
        limit = (verdict.threshold_pct or 0.0) / 100.0
        self.estimate = math.log(verdict.ratio)
        self.rooms = (
            (self.estimate - math.log(1.0 - limit), math.log(1.0 + limit) - self.estimate) if limit < 1 else (0.0, 0.0)
        )
        if context.beyond:
            self.reason = (
                f"a {abs(verdict.change_pct):.1f} % change beyond ±{verdict.threshold_pct:g} % that is not yet certain"
            )
        else:
            self.reason = f"the CI reaches beyond ±{verdict.threshold_pct:g} %"

    @property
    def at_threshold(self) -> bool:
        """Not beyond the limit, yet the estimate sits on it: more data are unlikely to decide it."""
        return not self.context.beyond and min(self.rooms) <= 0

    def at_threshold_answer(self) -> tuple[None, str] | None:
        """The hint when the estimate sits on the threshold (no count would decide it), else None."""
        if not self.at_threshold:
            return None
        return None, f"{self.reason}; the estimate sits at the threshold, so more data are unlikely to decide it"

    def first(self, se_of: Any, df_of: Any, candidates: Any) -> int | None:
        """The first candidate count that would likely decide it, or None."""
        import numpy as np

        ok = decides(
            self.estimate,
            se_of(candidates),
            df_of(candidates),
            beyond=self.context.beyond,
            rooms=self.rooms,
            alpha=self.context.family_alpha,
        )
        return int(candidates[np.argmax(ok)]) if np.any(ok) else None

    def ab_blocks(self, block_sd: float, why: str) -> tuple[Hint | None, str]:
        """The blocks of a ``pytest-tee ab`` run that would likely decide it, with sessions this noisy."""
        import numpy as np

        ks = np.arange(MIN_BLOCKS, MAX_BLOCKS_HINT + 1)
        k = self.first(lambda c: block_sd / np.sqrt(c), lambda c: c - 1, ks)
        if k is None:
            return None, f"{self.reason}; {why}, and even {MAX_BLOCKS_HINT} ABBA blocks would likely not" + QUIET
        return Hint(k, "ab blocks"), f"{self.reason}; {why}: `pytest-tee ab --blocks {k}` would likely decide it"
