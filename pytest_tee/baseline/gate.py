"""The gate's rules across verdicts: Holm's correction over a comparison's verdicts, and when adaptive rounds look.

Each verdict comes from a decision model (``pytest_tee.baseline.models``); the outcome rule they share is
``models.outcome.classify``. ``docs/baselines-and-gating.md`` explains the choices and the measured error rates.

numpy is imported inside the functions: pytest imports this module at start-up through the plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pytest_tee.baseline.models import DEFAULT_ALPHA, rejudge
from pytest_tee.records import OUTCOMES, Verdict

__all__ = ["DEFAULT_ALPHA", "OUTCOMES", "Verdict", "apply_family_correction", "holm_adjust", "is_gate_look"]


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
    tested = [(index, p) for index, verdict in enumerate(verdicts) if (p := verdict.detail.p_value) is not None]
    adjusted = holm_adjust([p for _, p in tested])
    result = list(verdicts)
    for (index, _), p_adj in zip(tested, adjusted, strict=True):
        with_p = replace(verdicts[index], detail=replace(verdicts[index].detail, p_adjusted=p_adj))
        judged = rejudge(with_p, alpha=alpha, p_value=p_adj, family_size=len(tested))
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
