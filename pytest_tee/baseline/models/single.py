"""The single-session model: one session a side, the between-session noise not measured (fewer than 3 stored runs).

The level of a session is assumed to vary by ``FALLBACK_NOISE_RATIO`` × the pooled round-to-round log SD s of the
two sessions, on top of the noise of its median: SE = s · √(2 · ratio² + (π/2)(1/n_base + 1/n_head)), t with
n_base + n_head − 2 df. Every verdict says that the noise was assumed (``standing_note``).
"""

from __future__ import annotations

import math

from pytest_tee.baseline.models.base import Evidence, HintContext, Rule
from pytest_tee.baseline.models.sessions import (
    FALLBACK_NOISE_RATIO,
    MEDIAN_VARIANCE_FACTOR,
    MIN_STORED_RUNS,
    HintSearch,
    decides,
    log_level,
    pooled_round_sd,
    single_se_factor,
    t_verdict,
    two_session_problem,
    untested,
)
from pytest_tee.records import Hint, ModelDetail, Verdict

NAME = "single"


def decide(evidence: Evidence, rule: Rule) -> Verdict:
    """``evidence.base``/``head``: one session's rounds each; ``len(evidence.history)`` (the stored runs of this
    fingerprint, the baseline included) goes into the note."""
    import numpy as np

    stored_runs = max(1, len([samples for samples in evidence.history if len(samples)]))
    base = np.asarray(evidence.base, dtype=float)
    head = np.asarray(evidence.head, dtype=float)
    problem = two_session_problem(base, head)
    if problem:
        return untested(evidence, rule, problem, model=NAME, base=base, head=head, stored_runs=stored_runs)
    nb, nh = int(base.size), int(head.size)
    pooled, df = pooled_round_sd(base, head)
    method = (
        f"single: one session a side; between-session noise assumed {FALLBACK_NOISE_RATIO:g} × the round-to-round "
        f"SD ({pooled:.1%}), {df} df"
    )
    return t_verdict(
        evidence,
        rule,
        float(np.median(base)),
        float(np.median(head)),
        estimate=log_level(head) - log_level(base),
        se=pooled * single_se_factor(nb, nh),
        df=df,
        model=NAME,
        detail=ModelDetail(method=method, n_base=nb, n_head=nh, sessions_base=stored_runs, sessions_head=1),
        hint_rule=hint,
        standing_note=standing_note,
    )


def unmeasured_noise_note(stored_runs: int) -> str:
    # No "; " inside: renderers split notes there and print this caveat once for all benchmarks.
    return (
        f"between-session noise not measured ({stored_runs} stored run(s) with this fingerprint, "
        f"{MIN_STORED_RUNS} needed), so it is assumed to be {FALLBACK_NOISE_RATIO:g} × the round-to-round noise"
    )


def standing_note(verdict: Verdict) -> str:
    return unmeasured_noise_note(verdict.detail.sessions_base or 1)


def hint(verdict: Verdict, context: HintContext) -> tuple[Hint | None, str]:
    """One session a side cannot shrink the assumed between-session noise: the ab blocks that would decide it."""
    search = HintSearch(verdict, context)
    if (stuck := search.at_threshold_answer()) is not None:
        return stuck
    # the assumed level SD of one session is se / √2
    return search.ab_blocks(
        (verdict.detail.se_log or 0.0) / math.sqrt(2.0), "one session a side cannot decide it at this noise"
    )


def rounds_could_decide(verdict: Verdict, *, alpha: float) -> bool:
    """Whether more head rounds in this session could still decide an inconclusive verdict (adaptive rounds).

    Only the head median's own share of the noise shrinks with more rounds, so only when the verdict would be
    decided at the current estimate with that share gone (rarely: sampling on would mostly waste time).
    """
    detail = verdict.detail
    if verdict.outcome != "inconclusive" or detail.se_log is None or detail.n_base is None or detail.n_head is None:
        return False
    if not (math.isfinite(verdict.ratio) and verdict.ratio > 0) or verdict.threshold_pct is None:
        return False
    limit = verdict.threshold_pct / 100.0
    estimate = math.log(verdict.ratio)
    beyond = abs(verdict.ratio - 1.0) > limit
    rooms = (estimate - math.log(1.0 - limit), math.log(1.0 + limit) - estimate)
    if not beyond and min(rooms) <= 0:
        return False
    pooled = detail.se_log / single_se_factor(detail.n_base, detail.n_head)
    best_se = pooled * math.sqrt(2.0 * FALLBACK_NOISE_RATIO**2 + MEDIAN_VARIANCE_FACTOR / detail.n_base)
    return bool(decides(estimate, best_se, 10_000.0, beyond=beyond, rooms=rooms, alpha=alpha, power=False))
