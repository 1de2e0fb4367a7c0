"""The history model: one head session against a stored baseline, with the between-session noise measured by the
stored runs of the same environment fingerprint and comparison key (at least 3).

SD = sample SD of the stored runs' log levels (newest ``HISTORY_LIMIT``, the baseline's own included); estimate =
log level(head) − log level(base); SE = SD · √2; t with (runs − 1) df. The allowance is never below the single
model's: a session disturbed by a neighbour is noisy in its own rounds too, and a quiet history does not vouch
for it (on the shared VM every false alarm of the stored-spread rule alone came from such a session).
"""

from __future__ import annotations

import math

from pytest_tee.baseline.models.base import Evidence, HintContext, Rule
from pytest_tee.baseline.models.sessions import (
    FALLBACK_NOISE_RATIO,
    HISTORY_LIMIT,
    MIN_STORED_RUNS,
    HintSearch,
    log_level,
    no_standing_note,
    pooled_round_sd,
    single_se_factor,
    t_verdict,
    two_session_problem,
    untested,
    unusable,
)
from pytest_tee.records import Hint, ModelDetail, Verdict

NAME = "history"


def usable_history(evidence: Evidence) -> list[list[float]]:
    """The stored runs' rounds this model uses: those with rounds, newest ``HISTORY_LIMIT``."""
    return [[float(value) for value in samples] for samples in evidence.history if len(samples)][:HISTORY_LIMIT]


def applies(evidence: Evidence) -> bool:
    return len(usable_history(evidence)) >= MIN_STORED_RUNS


def decide(evidence: Evidence, rule: Rule) -> Verdict:
    """Raises ValueError with fewer than 3 stored runs (``choose_model`` picks the single model then)."""
    import numpy as np

    runs = [np.asarray(samples, dtype=float) for samples in usable_history(evidence)]
    if len(runs) < MIN_STORED_RUNS:
        raise ValueError(f"the history model needs at least {MIN_STORED_RUNS} stored runs, got {len(runs)}")
    base = np.asarray(evidence.base, dtype=float)
    head = np.asarray(evidence.head, dtype=float)
    problem = two_session_problem(base, head) or next(
        (found for values in runs if (found := unusable("stored-run", values))), ""
    )
    if problem:
        return untested(evidence, rule, problem, model=NAME, base=base, head=head)
    m = len(runs)
    sd = float(np.std([log_level(values) for values in runs], ddof=1))
    se, df = sd * math.sqrt(2.0), float(m - 1)
    pooled, pooled_df = pooled_round_sd(base, head)
    method = (
        f"history: one head session against the stored baseline; between-session SD {sd:.1%} from {m} stored runs "
        f"with this fingerprint ({m - 1} df)"
    )
    if pooled * single_se_factor(base.size, head.size) > se:
        # A session disturbed by a neighbour shows it in its own rounds: a quiet history does not vouch for it.
        se, df = pooled * single_se_factor(base.size, head.size), float(pooled_df)
        method += (
            f", but the rounds of these two sessions imply more ({FALLBACK_NOISE_RATIO:g} × their round SD "
            f"{pooled:.1%}, {pooled_df} df), which is used"
        )
    return t_verdict(
        evidence,
        rule,
        float(np.median(base)),
        float(np.median(head)),
        estimate=log_level(head) - log_level(base),
        se=se,
        df=df,
        model=NAME,
        detail=ModelDetail(
            method=method, n_base=int(base.size), n_head=int(head.size), sessions_base=m, sessions_head=1
        ),
        hint_rule=hint,
    )


standing_note = no_standing_note  # nothing to say beside a decided verdict


def hint(verdict: Verdict, context: HintContext) -> tuple[Hint | None, str]:
    """More stored runs, when the stored runs' spread set the allowance; else the ab blocks that would decide it."""
    import numpy as np

    search = HintSearch(verdict, context)
    if (stuck := search.at_threshold_answer()) is not None:
        return stuck
    se, df = verdict.detail.se_log or 0.0, verdict.detail.df or 0.0
    m = verdict.detail.sessions_base or 0
    if round(df) == m - 1:  # the stored runs' spread set the allowance (not the rounds')
        total = search.first(lambda c: se + 0.0 * c, lambda c: c - 1, np.arange(m + 1, HISTORY_LIMIT + 1))
        if total is not None:
            more = total - m
            return Hint(more, "stored runs"), f"{search.reason}; about {more} more stored runs would likely decide it"
    return search.ab_blocks(se / math.sqrt(2.0), "one session cannot decide it at this between-session noise")
