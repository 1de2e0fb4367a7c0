"""The outcome rule every decision model shares: from a verdict's ratio, CI and p-value to its outcome.

``regressed`` when the CI excludes "no change" on the bad side, the estimate is beyond the limit and the one-sided
p-value is at most α; ``improved`` the same on the good side; ``unchanged`` when the whole CI lies within ±limit;
else ``inconclusive``, with the model's hint of how much more data would likely decide it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from pytest_tee.baseline.models.base import DEFAULT_ALPHA, HintContext
from pytest_tee.records import Hint, Verdict

HintRule = Callable[[Verdict, HintContext], tuple[Hint | None, str]]
StandingNote = Callable[[Verdict], str]

_EDGE = 1e-9  # an estimate exactly on the threshold is not beyond it, whatever the float rounding


def is_worse(ratio: float, higher_is_better: bool) -> bool:
    return ratio < 1.0 if higher_is_better else ratio > 1.0


def classify(
    verdict: Verdict,
    hint_rule: HintRule,
    standing_note: StandingNote,
    *,
    alpha: float = DEFAULT_ALPHA,
    p_value: float | None = None,
    family_size: int = 1,
) -> Verdict:
    """The verdict's outcome (and hint) from its ratio, CI and p-value — the same rule for every model.

    ``p_value`` overrides ``verdict.detail.p_value`` (used with the Holm-adjusted p; ``family_size`` is then the
    number of comparisons, for the hint). Verdicts that could not be tested (no CI) are returned as they are.
    """
    low, high = verdict.ci95
    if not (math.isfinite(low) and math.isfinite(high)) or verdict.threshold_pct is None:
        return verdict
    p = verdict.detail.p_value if p_value is None else p_value
    limit = verdict.threshold_pct / 100.0
    change = verdict.ratio - 1.0
    beyond = abs(change) > limit + _EDGE
    excludes_one = high < 1.0 if change < 0 else low > 1.0
    significant = p is not None and p <= alpha
    standing = standing_note(verdict)
    if beyond and excludes_one and significant:
        outcome = "regressed" if is_worse(verdict.ratio, bool(verdict.higher_is_better)) else "improved"
        return replace(verdict, outcome=outcome, hint=None, note=standing)
    if 1.0 - limit - _EDGE <= low and high <= 1.0 + limit + _EDGE:
        return replace(verdict, outcome="unchanged", hint=None, note=standing)
    context = HintContext(beyond, excludes_one, p, alpha, alpha / max(1, family_size))
    hint, note = hint_rule(verdict, context)
    note = "; ".join(part for part in (note, standing) if part)
    return replace(verdict, outcome="inconclusive", hint=hint, note=note)
