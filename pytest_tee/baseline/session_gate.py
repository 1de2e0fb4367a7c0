"""The gate in a pytest session: choose the baseline at the start, judge this session's results at the end.

The baseline must be chosen before pytest-benchmark saves this session's own run (its ``pytest_sessionfinish``
hookwrapper saves before any plain ``pytest_sessionfinish`` runs), or ``latest`` would be this very session.
So the plugin calls ``choose_baseline`` once the environment is known (``pytest_configure``), keeps the
``BaselineChoice`` (the baseline and its history: the stored runs of the same environment that measure the
between-session noise), and passes it to ``run_gate`` in ``pytest_sessionfinish``; it prints ``GateReport.text``,
adds ``GateReport.markdown`` to the summary and sets ``session.exitstatus`` from ``GateReport.exit_code``.
Neither raises for bad input: every outcome is a report. ``adaptive_gate_check`` serves adaptive rounds with the
same decision as the final gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_tee.baseline.compare import Comparison, ComparisonRefused, DecideHook, compare_runs
from pytest_tee.baseline.gate import DEFAULT_ALPHA, is_gate_look
from pytest_tee.baseline.select import BaselineMissing, history_runs, select_baseline, storage_path
from pytest_tee.errors import InputError
from pytest_tee.saved_runs import Run, RunFileError

if TYPE_CHECKING:
    from pytest_tee.settings import Settings

EXIT_OK = 0
EXIT_REGRESSION = 1  # a regression, or an inconclusive verdict with --tee-fail-inconclusive
EXIT_USAGE = 4  # pytest's usage error: a corrupt baseline, runs not comparable without --tee-allow-env-mismatch
EXIT_NO_BASELINE = 6  # distinct, so CI can tell "first run on this branch" from a failure


@dataclass(frozen=True)
class BaselineChoice:
    """The baseline run, or why there is none (kept from session start to session end).

    ``history``: the newest stored runs (≤ 10) with the baseline's environment fingerprint, the baseline first;
    with 3 or more the gate measures the between-session noise from them instead of assuming it.
    """

    run: Run | None
    error: InputError | None = None
    history: tuple[Run, ...] = ()


@dataclass(frozen=True)
class GateReport:
    status: str  # "compared", "no-baseline", "refused", "bad-baseline", "error", "nothing-measured"
    exit_code: int
    text: str  # for the terminal
    markdown: str  # for --tee-summary and $GITHUB_STEP_SUMMARY
    document: Mapping[str, Any]  # what --tee-verdicts writes
    comparison: Comparison | None = None


def choose_baseline(settings: Settings, *, storage_uri: str, fingerprint: str) -> BaselineChoice:
    """The baseline ``settings.compare`` names (``latest`` when only ``--tee-fail-drop`` is given), from the
    storage of ``--benchmark-storage``, for an environment with this fingerprint. Call it before any run is saved.
    """
    try:
        storage = storage_path(storage_uri)
        spec = settings.compare or "latest"
        run = select_baseline(storage, spec, fingerprint, allow_env_mismatch=settings.allow_env_mismatch)
        return BaselineChoice(run, history=tuple(history_runs(storage, run.fingerprint, include=run)))
    except InputError as exc:  # BaselineMissing, RunFileError, an ambiguous run number, a non-file storage
        return BaselineChoice(None, exc)


def run_gate(
    head: Run | None,
    settings: Settings,
    baseline: BaselineChoice,
    *,
    decide_hook: DecideHook | None = None,
    test_args: Sequence[str] = (),
) -> GateReport:
    """Judge ``head`` (this session's results; None when nothing was measured) against the chosen baseline with
    ``settings.gate_rules``. Writes ``--tee-verdicts`` when set. ``test_args`` (the session's test paths) go into
    the command an inconclusive verdict suggests.
    """
    report = _judge(head, settings, baseline, decide_hook, test_args)
    if settings.verdicts is not None:
        from pytest_tee.files import write_atomic

        write_atomic(settings.verdicts, json.dumps(report.document, indent=2, default=str) + "\n")
    return report


def _judge(
    head: Run | None,
    settings: Settings,
    baseline: BaselineChoice,
    decide_hook: DecideHook | None,
    test_args: Sequence[str] = (),
) -> GateReport:
    from pytest_tee.baseline.gate_output import render_markdown, render_text, verdicts_document

    if head is None:
        return _message_report(
            "nothing-measured", EXIT_OK, "no pytest-tee measurements in this session; nothing compared"
        )
    try:
        if baseline.run is None:
            raise baseline.error or BaselineMissing("no baseline was chosen")
        comparison = compare_runs(
            baseline.run,
            head,
            settings.gate_rules,
            allow_env_mismatch=settings.allow_env_mismatch,
            decide_hook=decide_hook,
            history=baseline.history,
        )
    except BaselineMissing as exc:
        if settings.allow_missing_baseline:
            return _message_report("no-baseline", EXIT_OK, f"{exc} — passing (--tee-allow-missing-baseline)")
        return _message_report(
            "no-baseline", EXIT_NO_BASELINE, f"{exc}; or pass --tee-allow-missing-baseline for a branch's first run"
        )
    except ComparisonRefused as exc:
        return _message_report("refused", EXIT_USAGE, str(exc))
    except RunFileError as exc:
        return _message_report("bad-baseline", EXIT_USAGE, str(exc))
    except InputError as exc:  # an ambiguous run number, a hook returning something that is not a Verdict, …
        return _message_report("error", EXIT_USAGE, str(exc))
    exit_code = comparison.exit_code(settings.fail_inconclusive)
    document = {"status": "compared", **verdicts_document(comparison, fail_inconclusive=settings.fail_inconclusive)}
    step = next_step(comparison, test_args, strict=settings.fail_inconclusive)
    return GateReport(
        status="compared",
        exit_code=exit_code,
        text=render_text(comparison) + (f"{step}\n" if step else ""),
        markdown=render_markdown(comparison) + (f"\n{step}\n" if step else ""),
        document=document,
        comparison=comparison,
    )


def next_step(comparison: Comparison, test_args: Sequence[str], *, strict: bool) -> str:
    """For inconclusive verdicts, the one command that would likely decide them: a same-runner A/B of the
    baseline's commit against this code (it stops as soon as decided). "" when nothing is inconclusive.
    """
    import shlex

    from pytest_tee.baseline.ab_command import DEFAULT_BLOCKS

    open_verdicts = comparison.inconclusive
    if not open_verdicts:
        return ""
    hints = [v.hint.count for v in open_verdicts if v.hint is not None and v.hint.unit == "ab blocks" and v.hint.count]
    blocks = max([DEFAULT_BLOCKS, *hints])
    commit = str(comparison.base.commit.get("id") or "")
    base = commit[:12] if commit and commit != "unknown" else "BASE-REVISION"
    arguments = " ".join(shlex.quote(argument) for argument in test_args) or "PYTEST-ARGS"
    command = f"pytest-tee ab --base {base} --blocks {blocks} -- {arguments}"
    strict_note = "" if strict else "; to fail a PR on inconclusive verdicts instead, pass --tee-fail-inconclusive"
    return (
        f"next: {len(open_verdicts)} inconclusive — run `{command}` (base and head measured on this runner, "
        f"interleaved; it stops once decided){strict_note}"
    )


def _message_report(status: str, exit_code: int, message: str) -> GateReport:
    from pytest_tee.baseline.gate_output import VERDICTS_SCHEMA

    return GateReport(
        status=status,
        exit_code=exit_code,
        text=f"pytest-tee gate: {message}\n",
        markdown=f"### pytest-tee gate\n\n{message}\n",
        document={"schema": VERDICTS_SCHEMA, "status": status, "exit_code": exit_code, "message": message},
    )


def adaptive_gate_check(
    baseline: Run | None,
    fullname: str,
    rules: Sequence[tuple[str, float]],
    *,
    first_look: int,
    family_size: int = 1,
    alpha: float = DEFAULT_ALPHA,
    history: Sequence[Run] = (),
) -> Callable[[Any], str | None] | None:
    """For adaptive rounds: a check that takes the round log (anything with ``samples(metric)``) and returns a
    note while the verdict against the baseline is still open and more rounds could close it (keep sampling),
    or None (stop).

    It judges as the final gate does (``models.decide``, with ``history`` = ``BaselineChoice.history``).
    Against stored runs the allowance is the between-session noise, which more rounds of this session do not
    shrink, so an open verdict that only more sessions could decide stops sampling too. None when the baseline has
    no such benchmark. The gate is consulted at ``first_look`` rounds and at each doubling (``is_gate_look``), with
    alpha split over ``family_size`` gated comparisons, so stopping early keeps the false-alarm rate of fixed rounds.
    """
    from pytest_tee.baseline.compare import history_samples, stored_history
    from pytest_tee.baseline.models import Evidence, Rule, decide
    from pytest_tee.baseline.models.single import rounds_could_decide
    from pytest_tee.measure.metrics import METRICS

    measurement = baseline.by_fullname().get(fullname) if baseline is not None else None
    if baseline is None or measurement is None:
        return None
    gated = [(metric, pct, measurement.samples(metric)) for metric, pct in rules if measurement.samples(metric)]
    if not gated:
        return None
    stored = stored_history(baseline, baseline, history)
    per_comparison = alpha / max(1, family_size)

    def check(log: Any) -> str | None:
        done = max(len(log.samples(metric)) for metric, _, _ in gated)
        if not is_gate_look(done, first_look):
            return f"gate: next look after {_next_look(done, first_look)} rounds"
        open_metrics = []
        for metric, pct, base in gated:
            evidence = Evidence(
                fullname,
                metric,
                base=base,
                head=log.samples(metric),
                history=history_samples(measurement, fullname, metric, stored),
            )
            verdict = decide(evidence, Rule(pct, METRICS[metric].higher_is_better, per_comparison))
            if verdict.model == "single" and rounds_could_decide(verdict, alpha=per_comparison):
                open_metrics.append(metric)
        return f"gate: {', '.join(open_metrics)} inconclusive after {done} rounds" if open_metrics else None

    return check


def _next_look(done: int, first_look: int) -> int:
    look = max(1, first_look)
    while look <= done:
        look *= 2
    return look
