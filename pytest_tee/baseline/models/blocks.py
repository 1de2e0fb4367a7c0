"""The blocks model: same-runner A/B in ABBA blocks (``pytest-tee ab``).

Per block d = mean(log head levels) − mean(log base levels) (a level is the median of a session's rounds); the
estimate is the mean of d, with a 95 % t-interval over blocks (k − 1 df) and a one-sided t-test. Assumes the blocks
are independent; drift within a block cancels. ``judge_differences`` is the rule over per-block differences, so
a sequential design can call it at each look with its own α.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

from pytest_tee.baseline.models.base import Evidence, HintContext, Rule
from pytest_tee.baseline.models.sessions import (
    MAX_BLOCKS_HINT,
    MIN_BLOCKS,
    QUIET,
    HintSearch,
    log_level,
    no_standing_note,
    t_verdict,
    untested,
    unusable,
)
from pytest_tee.records import Hint, ModelDetail, Verdict

NAME = "blocks"


@dataclass(frozen=True)
class BlockLevels:
    """The blocks with a session on both sides, as log levels, and the rounds behind them."""

    kept: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]  # per block: (base log levels, head log levels)
    rounds_base: int
    rounds_head: int

    @property
    def differences(self) -> list[float]:
        return [statistics.fmean(head) - statistics.fmean(base) for base, head in self.kept]

    @property
    def base_levels(self) -> list[float]:
        return [level for base, _ in self.kept for level in base]

    @property
    def head_levels(self) -> list[float]:
        return [level for _, head in self.kept for level in head]


def block_levels(evidence: Evidence) -> BlockLevels | str:
    """Each block's sessions as log levels; sessions without rounds left out, a block without a session on both
    sides not counted. A problem with the samples is returned as its description."""
    kept: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    rounds = {"base": 0, "head": 0}
    for base_sessions, head_sessions in evidence.blocks:
        sides: dict[str, list[float]] = {"base": [], "head": []}
        for side, sessions in (("base", base_sessions), ("head", head_sessions)):
            for samples in sessions:
                values = [float(value) for value in samples]  # plain floats: far quicker than numpy for a few rounds
                if not values:
                    continue
                if not all(math.isfinite(value) and value > 0 for value in values):
                    import numpy as np

                    return unusable(side, np.asarray(values))
                sides[side].append(log_level(values))
                rounds[side] += len(values)
        if sides["base"] and sides["head"]:
            kept.append((tuple(sides["base"]), tuple(sides["head"])))
    return BlockLevels(tuple(kept), rounds["base"], rounds["head"])


def decide(evidence: Evidence, rule: Rule) -> Verdict:
    """The verdict from ABBA blocks. Fewer than 3 counted blocks: inconclusive with a note."""
    levels = block_levels(evidence)
    if isinstance(levels, str):
        return untested(evidence, rule, levels, model=NAME)
    return judge_differences(evidence, rule, levels)


def judge_differences(evidence: Evidence, rule: Rule, levels: BlockLevels) -> Verdict:
    """The t-rule over the per-block differences of ``levels`` (the mean difference, its t-interval over blocks)."""
    k = len(levels.kept)
    base_levels, head_levels = levels.base_levels, levels.head_levels
    base_value = math.exp(statistics.fmean(base_levels)) if base_levels else math.nan
    head_value = math.exp(statistics.fmean(head_levels)) if head_levels else math.nan
    detail = ModelDetail(
        n_base=levels.rounds_base,
        n_head=levels.rounds_head,
        sessions_base=len(base_levels),
        sessions_head=len(head_levels),
    )
    if k < MIN_BLOCKS:
        return Verdict(
            evidence.benchmark,
            evidence.metric,
            base_value,
            head_value,
            head_value / base_value if base_levels and head_levels else math.nan,
            (math.nan, math.nan),
            "inconclusive",
            threshold_pct=rule.threshold_pct,
            model=NAME,
            higher_is_better=rule.higher_is_better,
            detail=replace(detail, method=f"blocks: {k} block(s), too few for a t-interval"),
            hint=Hint(MIN_BLOCKS - k, "blocks"),
            note=f"{k} block(s) with both sides measured; the block model needs at least {MIN_BLOCKS}",
        )
    differences = levels.differences
    sd = statistics.stdev(differences)
    sessions_per_block = (len(base_levels) + len(head_levels)) / k
    method = (
        f"blocks: {k} blocks of {sessions_per_block:g} sessions, head − base of the mean log session medians per "
        f"block, t over blocks ({k - 1} df; block SD {sd:.1%})"
    )
    sequential = None
    if evidence.max_blocks is not None:
        from pytest_tee.baseline.sequential import look

        seen = look(differences, evidence.max_blocks, rule.alpha)
        sequential = (seen.p_value, seen.ci95)
        method = (
            f"blocks, sequential: look after block {seen.blocks} of at most {seen.max_blocks} "
            f"({sessions_per_block:g} sessions a block), head − base of the mean log session medians per block, "
            f"t over blocks ({seen.df} df; block SD {sd:.1%}); O'Brien–Fleming α spending, |t| ≥ "
            f"{seen.t_boundary:.3g} needed here, repeated 95 % CI"
        )
    return t_verdict(
        evidence,
        rule,
        base_value,
        head_value,
        estimate=statistics.fmean(differences),
        se=sd / math.sqrt(k),
        df=k - 1,
        model=NAME,
        detail=replace(detail, method=method),
        hint_rule=hint,
        sequential=sequential,
    )


standing_note = no_standing_note  # nothing to say beside a decided verdict


def hint(verdict: Verdict, context: HintContext) -> tuple[Hint | None, str]:
    """About how many more blocks (and sessions) would likely decide it."""
    import numpy as np

    search = HintSearch(verdict, context)
    if (stuck := search.at_threshold_answer()) is not None:
        return stuck
    detail = verdict.detail
    se, df = detail.se_log or 0.0, detail.df or 0.0
    k = round(df) + 1
    block_sd = se * math.sqrt(k)
    total = search.first(lambda c: block_sd / np.sqrt(c), lambda c: c - 1, np.arange(k + 1, MAX_BLOCKS_HINT + 1))
    if total is None:
        return None, f"{search.reason}; deciding it would take more than {MAX_BLOCKS_HINT} blocks" + QUIET
    more = total - k
    per_block = ((detail.sessions_base or 0) + (detail.sessions_head or 0)) / k
    sessions = f" ({round(more * per_block)} sessions)" if per_block else ""
    return Hint(more, "blocks"), f"{search.reason}; about {more} more blocks{sessions} would likely decide it"
