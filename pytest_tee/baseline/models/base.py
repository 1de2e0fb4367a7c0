"""The one interface every decision model implements, and what it is given: the evidence and the rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_tee.records import Hint, Verdict

DEFAULT_ALPHA = 0.01  # one-sided, family-wise over the verdicts of one comparison (Holm)

Block = tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]  # (base sessions' rounds, head sessions' rounds)


@dataclass(frozen=True)
class Rule:
    """What counts as a change: the limit in percent, the metric's good direction, and the false-alarm rate."""

    threshold_pct: float
    higher_is_better: bool
    alpha: float = DEFAULT_ALPHA


@dataclass(frozen=True)
class Evidence:
    """Everything known about a pair of runs for one benchmark and metric; ``choose_model`` reads what is there.

    ``base``/``head``: the rounds of one base session and one head session. ``history``: the rounds of stored runs
    of the baseline's fingerprint and comparison key, newest first, the baseline's own included. ``blocks``: the
    ABBA blocks of ``pytest-tee ab`` (each block's base sessions and head sessions, as lists of rounds).
    ``interleaved``: base and head rounds were taken alternately in one process (only then are rounds exchangeable).
    ``max_blocks``: the blocks are one look of a sequential run of at most that many blocks (``pytest-tee ab``
    looks after every block), judged with the group-sequential p-value and repeated CI.
    """

    benchmark: str
    metric: str
    base: Sequence[float] = ()
    head: Sequence[float] = ()
    history: Sequence[Sequence[float]] = ()
    blocks: Sequence[Block] = ()
    interleaved: bool = False
    max_blocks: int | None = None


@dataclass(frozen=True)
class HintContext:
    """What ``classify`` found, for a model's hint: is the estimate beyond the limit, does the CI exclude 1, the
    p-value used, the α it had to reach, and that α over the family size (Holm's first step)."""

    beyond: bool
    excludes_one: bool
    p_value: float | None
    alpha: float
    family_alpha: float


class DecisionModel(Protocol):
    """A decision model (each is a module: ``rounds``, ``single``, ``history``, ``blocks``)."""

    NAME: str

    def decide(self, evidence: Evidence, rule: Rule) -> Verdict: ...

    def hint(self, verdict: Verdict, context: HintContext) -> tuple[Hint | None, str]: ...

    def standing_note(self, verdict: Verdict) -> str: ...
