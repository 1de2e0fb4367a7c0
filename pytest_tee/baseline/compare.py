"""Comparing runs: match benchmarks, check that they measured the same thing, and judge each gated metric.

``compare_runs`` judges one head session against a stored baseline (the plugin at session end,
``pytest-tee compare`` and ``pytest-tee report --history``); ``compare_blocks`` judges the ABBA blocks of
``pytest-tee ab``. Both gather the ``Evidence`` of each benchmark and metric and leave the choice of decision
model to ``models.decide``; both return the same ``Comparison`` and apply the same refusals and Holm correction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_tee.baseline.gate import DEFAULT_ALPHA, OUTCOMES, Verdict, apply_family_correction
from pytest_tee.baseline.models import Evidence, Rule, decide
from pytest_tee.baseline.models.sessions import HISTORY_LIMIT
from pytest_tee.errors import InputError
from pytest_tee.saved_runs import BenchmarkEntry, Run

# Called with keywords exactly like the pytest_tee_generate_verdict hook, minus ``config``.
DecideHook = Callable[..., "Verdict | None"]

EXIT_OK = 0
EXIT_REGRESSION = 1


@dataclass(frozen=True)
class Difference:
    field: str  # dotted path, e.g. "libraries.torch" or "workload.new_tokens"
    base: Any
    head: Any

    def describe(self) -> str:
        return f"{self.field}: {_show(self.base)} → {_show(self.head)}"


@dataclass(frozen=True)
class Mismatch:
    """Something that makes base and head not comparable: the environments, or one benchmark's setup."""

    scope: str  # "environment", or the benchmark's fullname
    differences: tuple[Difference, ...]

    def describe(self) -> str:
        what = "environment fingerprint" if self.scope == "environment" else f"{self.scope}: comparison key"
        return f"{what} differs: " + "; ".join(difference.describe() for difference in self.differences)


class ComparisonRefused(InputError):
    """Base and head are not comparable (different environment or benchmark setup) and that was not allowed."""

    def __init__(self, mismatches: Sequence[Mismatch], *, flag: str = "--tee-allow-env-mismatch") -> None:
        self.mismatches = tuple(mismatches)
        lines = "\n".join(f"  {mismatch.describe()}" for mismatch in self.mismatches)
        super().__init__(
            f"base and head are not comparable:\n{lines}\n"
            f"Compare against a baseline recorded in the same environment and setup, or pass {flag} to "
            "compare anyway (the verdicts then include the effect of these differences)."
        )


@dataclass
class Comparison:
    base: Run
    head: Run
    verdicts: list[Verdict]
    mismatches: list[Mismatch] = field(default_factory=list)  # only when allowed; otherwise compare_runs refuses
    base_only: list[str] = field(default_factory=list)  # benchmarks in base, not in head (not compared)
    head_only: list[str] = field(default_factory=list)  # benchmarks in head, not in base (new; not compared)
    not_applicable: list[tuple[str, str]] = field(default_factory=list)  # (benchmark, metric) measured by neither
    alpha: float = DEFAULT_ALPHA
    rules: list[tuple[str, float]] = field(default_factory=list)

    @property
    def unmatched(self) -> list[str]:
        return [f"{name} (only in base)" for name in self.base_only] + [
            f"{name} (only in head)" for name in self.head_only
        ]

    def with_outcome(self, outcome: str) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.outcome == outcome]

    @property
    def regressed(self) -> list[Verdict]:
        return self.with_outcome("regressed")

    @property
    def inconclusive(self) -> list[Verdict]:
        return self.with_outcome("inconclusive")

    def counts(self) -> dict[str, int]:
        return {outcome: len(self.with_outcome(outcome)) for outcome in OUTCOMES}

    def exit_code(self, fail_inconclusive: bool = False) -> int:
        """1 on a regression (or an inconclusive verdict when ``fail_inconclusive``), else 0."""
        if self.regressed or (fail_inconclusive and self.inconclusive):
            return EXIT_REGRESSION
        return EXIT_OK


def compare_runs(
    base: Run,
    head: Run,
    rules: Sequence[tuple[str, float]],
    *,
    allow_env_mismatch: bool = False,
    decide_hook: DecideHook | None = None,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    refuse_flag: str = "--tee-allow-env-mismatch",
    history: Sequence[Run] = (),
) -> Comparison:
    """Judge every benchmark in both runs on every ``(metric, threshold_pct)`` rule: one head session against
    the stored baseline ``base``.

    ``history``: stored runs, newest first (``BaselineChoice.history``); those with the baseline's fingerprint
    and, per benchmark, its comparison key measure the between-session noise (the baseline itself always counts;
    the newest ``HISTORY_LIMIT`` are used). With fewer than 3 such runs the fallback rule judges and says so.
    Raises ComparisonRefused (listing each differing field) when the environment fingerprints or a benchmark's
    comparison key differ, unless ``allow_env_mismatch``; then the mismatches are kept in the result instead.
    ``decide_hook(benchmark=, metric=, base=, head=, threshold_pct=, higher_is_better=)`` may return a Verdict
    that replaces the built-in decision. Built-in verdicts are corrected for multiplicity (Holm, ``alpha``).
    ``seed`` is accepted for compatibility; the session-level models are not random.
    """
    del seed
    base_by_name = base.by_fullname()
    head_by_name = head.by_fullname()
    stored = stored_history(base, head, history)

    def judge(name: str, metric: str, threshold_pct: float, higher_is_better: bool) -> Verdict:
        base_samples = base_by_name[name].samples(metric)
        head_samples = head_by_name[name].samples(metric)
        if decide_hook is not None:
            replaced = decide_hook(
                benchmark=name,
                metric=metric,
                base=list(base_samples),
                head=list(head_samples),
                threshold_pct=threshold_pct,
                higher_is_better=higher_is_better,
            )
            if replaced is not None:
                return _checked_hook_verdict(
                    replaced, threshold_pct, len(base_samples), len(head_samples), higher_is_better
                )
        evidence = stored_evidence(base_by_name[name], head_by_name[name], metric, stored)
        return decide(evidence, Rule(threshold_pct, higher_is_better, alpha))

    return _compare(
        base, head, rules, judge, allow_env_mismatch=allow_env_mismatch, alpha=alpha, refuse_flag=refuse_flag
    )


def compare_blocks(
    base: Run,
    head: Run,
    blocks: Sequence[tuple[Sequence[Run], Sequence[Run]]],
    rules: Sequence[tuple[str, float]],
    *,
    allow_env_mismatch: bool = False,
    alpha: float = DEFAULT_ALPHA,
    refuse_flag: str = "--allow-env-mismatch",
    max_blocks: int | None = None,
) -> Comparison:
    """Judge same-runner A/B blocks: ``blocks`` holds each block's (base sessions, head sessions) as runs.

    ``base``/``head`` stand for each side as a whole (e.g. its sessions merged): they give the benchmark lists,
    the refusals and the header of the output. Every session is also checked against the first base session.
    ``max_blocks``: these blocks are one look of a sequential run of at most that many (``models.blocks``).
    """
    sessions = [run for pair in blocks for side in pair for run in side]
    mismatches = [mismatch for run in sessions for mismatch in environment_mismatches(base, run)]
    if mismatches and not allow_env_mismatch:
        raise ComparisonRefused(mismatches[:1], flag=refuse_flag)

    def judge(name: str, metric: str, threshold_pct: float, higher_is_better: bool) -> Verdict:
        def rounds(runs: Sequence[Run]) -> list[list[float]]:
            return [measured.samples(metric) for run in runs if (measured := run.by_fullname().get(name)) is not None]

        sessions = [(rounds(base_sessions), rounds(head_sessions)) for base_sessions, head_sessions in blocks]
        return decide(
            Evidence(name, metric, blocks=sessions, max_blocks=max_blocks), Rule(threshold_pct, higher_is_better, alpha)
        )

    return _compare(
        base, head, rules, judge, allow_env_mismatch=allow_env_mismatch, alpha=alpha, refuse_flag=refuse_flag
    )


Judge = Callable[[str, str, float, bool], Verdict]


def _compare(
    base: Run,
    head: Run,
    rules: Sequence[tuple[str, float]],
    judge: Judge,
    *,
    allow_env_mismatch: bool,
    alpha: float,
    refuse_flag: str,
) -> Comparison:
    from pytest_tee.measure.metrics import METRICS

    base_by_name = base.by_fullname()
    head_by_name = head.by_fullname()
    common = [name for name in head_by_name if name in base_by_name]
    mismatches = environment_mismatches(base, head)
    mismatches += [
        Mismatch(name, differences)
        for name in common
        if (differences := key_differences(base_by_name[name], head_by_name[name]))
    ]
    if mismatches and not allow_env_mismatch:
        raise ComparisonRefused(mismatches, flag=refuse_flag)

    verdicts: list[Verdict] = []
    not_applicable: list[tuple[str, str]] = []
    for name in common:
        for metric, threshold_pct in rules:
            if not base_by_name[name].samples(metric) and not head_by_name[name].samples(metric):
                not_applicable.append((name, metric))
                continue
            higher_is_better = _higher_is_better(metric, head_by_name[name], METRICS)
            verdicts.append(judge(name, metric, threshold_pct, higher_is_better))
    return Comparison(
        base=base,
        head=head,
        verdicts=apply_family_correction(verdicts, alpha=alpha),
        mismatches=mismatches,
        base_only=[name for name in base_by_name if name not in head_by_name],
        head_only=[name for name in head_by_name if name not in base_by_name],
        not_applicable=not_applicable,
        alpha=alpha,
        rules=list(rules),
    )


def stored_history(base: Run, head: Run, history: Sequence[Run]) -> list[Run]:
    """The baseline first, then the other stored runs of its environment (not the head, nothing twice)."""
    seen = {_identity(base), _identity(head)}
    runs = [base]
    for run in history:
        identity = _identity(run)
        if identity in seen or run.fingerprint != base.fingerprint:
            continue
        seen.add(identity)
        runs.append(run)
    return runs


def _identity(run: Run) -> object:
    if run.path is not None:
        return run.path.resolve()
    return id(run)


def stored_evidence(base: BenchmarkEntry, head: BenchmarkEntry, metric: str, stored: Sequence[Run]) -> Evidence:
    """What is known about one head session against the stored baseline: both sessions' rounds and those of the
    stored runs with the baseline's comparison key (``stored``: ``stored_history``'s runs, the baseline first)."""
    return Evidence(
        head.fullname,
        metric,
        base=base.samples(metric),
        head=head.samples(metric),
        history=history_samples(base, base.fullname, metric, stored),
    )


def history_samples(base: BenchmarkEntry, name: str, metric: str, stored: Sequence[Run]) -> list[list[float]]:
    """Rounds of ``metric`` in the stored runs that measured this benchmark with the baseline's comparison key."""
    found: list[list[float]] = []
    for run in stored:
        measured = run.by_fullname().get(name)
        if measured is None or dict(measured.comparison_key) != dict(base.comparison_key):
            continue
        samples = measured.samples(metric)
        if samples:
            found.append(samples)
        if len(found) == HISTORY_LIMIT:
            break
    return found


def _higher_is_better(metric: str, measurement: BenchmarkEntry, known: Mapping[str, Any]) -> bool:
    if metric in known:
        return bool(known[metric].higher_is_better)
    stored = measurement.metrics.get(metric, {}).get("higher_is_better")
    if isinstance(stored, bool):
        return stored  # a metric added by a newer pytest-tee or a hook: trust the direction it recorded
    raise InputError(f"unknown metric {metric!r}: metrics are {', '.join(known)}")


def _checked_hook_verdict(verdict: Any, threshold_pct: float, n_base: int, n_head: int, higher: bool) -> Verdict:
    if not isinstance(verdict, Verdict):
        raise InputError(f"pytest_tee_generate_verdict returned {type(verdict).__name__}, expected a Verdict or None")
    if verdict.outcome not in OUTCOMES:
        raise InputError(
            f"pytest_tee_generate_verdict returned outcome {verdict.outcome!r} for {verdict.benchmark}; "
            f"valid outcomes are {', '.join(OUTCOMES)}"
        )
    detail = verdict.detail
    return replace(
        verdict,
        threshold_pct=threshold_pct if verdict.threshold_pct is None else verdict.threshold_pct,
        higher_is_better=higher if verdict.higher_is_better is None else verdict.higher_is_better,
        note=verdict.note or "decided by a pytest_tee_generate_verdict hook",
        detail=replace(
            detail,
            n_base=n_base if detail.n_base is None else detail.n_base,
            n_head=n_head if detail.n_head is None else detail.n_head,
            p_value=None,  # not part of the built-in family correction
        ),
    )


def environment_mismatches(base: Run, head: Run) -> list[Mismatch]:
    """The environment fingerprint check: empty when the fingerprints match."""
    if base.fingerprint == head.fingerprint:
        return []
    base_fields = base.environment.get("fingerprint_fields")
    head_fields = head.environment.get("fingerprint_fields")
    differences: tuple[Difference, ...] = ()
    if isinstance(base_fields, Mapping) and isinstance(head_fields, Mapping):
        differences = tuple(_differences(base_fields, head_fields))
    # Same fields yet another hash (or no fields recorded): a different fingerprint recipe; show the hashes.
    return [Mismatch("environment", differences or (Difference("fingerprint", base.fingerprint, head.fingerprint),))]


def key_differences(base: BenchmarkEntry, head: BenchmarkEntry) -> tuple[Difference, ...]:
    return tuple(_differences(base.comparison_key, head.comparison_key))


def _differences(base: Any, head: Any, prefix: str = "") -> Iterator[Difference]:
    if isinstance(base, Mapping) and isinstance(head, Mapping):
        for key in sorted(set(base) | set(head), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield from _differences(base.get(key, _ABSENT), head.get(key, _ABSENT), path)
    elif isinstance(base, list) and isinstance(head, list) and len(base) == len(head):
        for index, (left, right) in enumerate(zip(base, head, strict=True)):
            yield from _differences(left, right, f"{prefix}[{index}]")
    elif base != head:
        yield Difference(prefix or "value", base, head)


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return value
    return repr(value) if not isinstance(value, (list, dict)) else str(value)
