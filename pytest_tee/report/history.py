"""One benchmark across saved runs, in time order, with the runs whose verdict was ``regressed`` marked.

Verdicts come from files written by ``--tee-verdicts`` (a list of Verdict dicts: ``benchmark``, ``metric``,
``outcome``, …) when given. Without them each run is compared with the previous run holding the benchmark exactly
as the gate would have judged it then, with storage holding the runs up to the previous one
(``baseline.models.decide``: ≥ 3 stored runs of the previous run's fingerprint measure the between-session noise,
else the cautious single-session model; threshold 5 % unless told).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from pytest_tee.errors import InputError
from pytest_tee.measure.metrics import METRICS
from pytest_tee.records import OUTCOMES
from pytest_tee.report.data import SavedRun
from pytest_tee.stats import Estimate, estimate

DEFAULT_THRESHOLD_PCT = 5.0


@dataclass
class HistoryPoint:
    saved: SavedRun
    fullname: str
    execution_env: str
    estimate: Estimate
    samples: tuple[float, ...]
    environment_changed: bool  # fingerprint differs from the previous point's
    outcome: str | None = None  # regressed | improved | unchanged | inconclusive | None (first run, no verdict)
    outcome_detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.saved.label,
            "path": str(self.saved.run.path) if self.saved.run.path else None,
            "datetime": self.saved.run.datetime,
            "fingerprint": self.saved.run.fingerprint,
            "execution_env": self.execution_env,
            "environment_changed": self.environment_changed,
            **self.estimate.to_dict(),
            "outcome": self.outcome,
            "outcome_detail": self.outcome_detail,
        }


@dataclass
class History:
    benchmark: str
    metric: str
    points: list[HistoryPoint]
    rule: str  # how the outcomes were obtained
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "unit": METRICS[self.metric].unit,
            "rule": self.rule,
            "points": [point.to_dict() for point in self.points],
            "notes": list(self.notes),
        }


def find_benchmark(runs: Sequence[SavedRun], query: str) -> str:
    """The one benchmark full name equal to ``query``, or else the only one containing it (case-insensitive)."""
    names = sorted({m.fullname for saved in runs for m in saved.run.measurements})
    if query in names:
        return query
    matches = [name for name in names if query.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        shown = "\n  ".join(names[:10]) + ("\n  …" if len(names) > 10 else "")
        raise InputError(f"--history {query!r}: no benchmark matches; the runs hold:\n  {shown}")
    shown = "\n  ".join(matches[:10]) + ("\n  …" if len(matches) > 10 else "")
    raise InputError(f"--history {query!r} matches {len(matches)} benchmarks; give one of:\n  {shown}")


def build_history(
    runs: Sequence[SavedRun],
    query: str,
    *,
    metric: str = "decode_tps",
    verdict_files: Sequence[tuple[str | None, Path]] = (),
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
) -> History:
    fullname = find_benchmark(runs, query)
    points: list[HistoryPoint] = []
    for saved in runs:  # already in time order
        measurement = saved.run.by_fullname().get(fullname)
        if measurement is None:
            continue
        found = estimate(metric, measurement.samples(metric), measurement.metrics.get(metric))
        if found is None:
            continue
        previous = points[-1].saved.run.fingerprint if points else saved.run.fingerprint
        points.append(
            HistoryPoint(
                saved=saved,
                fullname=fullname,
                execution_env=measurement.execution_env,
                estimate=found,
                samples=tuple(measurement.samples(metric)),
                environment_changed=previous != saved.run.fingerprint,
            )
        )
    if not points:
        raise InputError(f"--history {query!r}: {fullname} has no {metric} in any run")
    history = History(fullname, metric, points, rule="")
    if verdict_files:
        _apply_verdict_files(history, runs, verdict_files)
    else:
        _apply_consecutive_rule(history, runs, threshold_pct)
    changed = [point.saved.label for point in points if point.environment_changed]
    if changed:
        history.notes.append(
            "the environment fingerprint changed at " + ", ".join(changed) + ": a step there may be the machine, "
            "not the code"
        )
    return history


def _apply_consecutive_rule(history: History, runs: Sequence[SavedRun], threshold_pct: float) -> None:
    """Each run against the previous run holding the benchmark, judged as ``pytest-tee compare`` judges it."""
    from pytest_tee.baseline.compare import stored_evidence, stored_history
    from pytest_tee.baseline.models import Rule, choose_model

    rule = Rule(threshold_pct, METRICS[history.metric].higher_is_better)
    used: list[str] = []
    for base, head in pairwise(history.points):
        base_entry = base.saved.run.by_fullname()[history.benchmark]
        head_entry = head.saved.run.by_fullname()[history.benchmark]
        # What storage held when the head session ran: the baseline and the runs before it, newest first.
        stored = [saved.run for saved in reversed(runs) if saved.order <= base.saved.order]
        evidence = stored_evidence(
            base_entry, head_entry, history.metric, stored_history(base.saved.run, head.saved.run, stored)
        )
        model = choose_model(evidence)
        verdict = model.decide(evidence, rule)
        used.append(model.NAME)
        head.outcome = verdict.outcome
        ci = verdict.ci95
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if all(math.isfinite(v) for v in ci) else ""
        head.outcome_detail = f"vs {base.saved.label}: ratio {verdict.ratio:.3f}{ci_text} ({model.NAME} model)" + (
            f"; {verdict.note}" if verdict.note else ""
        )
    models = ", ".join(dict.fromkeys(used)) or "none"
    history.rule = (
        f"each run against the previous run holding this benchmark, as the gate judged it then (`pytest-tee compare` "
        f"with a {threshold_pct:g} % threshold and the runs up to the previous one as stored history; "
        f"decision model: {models})"
    )


def load_verdicts(path: Path) -> list[Mapping[str, Any]]:
    """A ``--tee-verdicts`` file: a list of Verdict dicts (or ``{"verdicts": [...]}``)."""
    expected = "expected the JSON written by --tee-verdicts: a list of verdicts with benchmark, metric, outcome"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--verdicts {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--verdicts {path}: cannot be read as JSON ({exc}); {expected}") from None
    verdicts = document.get("verdicts") if isinstance(document, dict) else document
    if not isinstance(verdicts, list):
        raise InputError(f"--verdicts {path}: {expected}")
    for index, verdict in enumerate(verdicts):
        if not isinstance(verdict, dict) or not {"benchmark", "metric", "outcome"} <= set(verdict):
            raise InputError(f"--verdicts {path}: entry #{index} lacks benchmark, metric or outcome; {expected}")
        if verdict["outcome"] not in OUTCOMES:
            raise InputError(
                f"--verdicts {path}: entry #{index} has outcome {verdict['outcome']!r}, "
                f"not one of {', '.join(OUTCOMES)}"
            )
    return verdicts


def find_run(runs: Sequence[SavedRun], name: str) -> SavedRun:
    """A run by label, file path, file name, file stem or run number (``0007``), when exactly one run matches."""
    matches = [saved for saved in runs if name in _run_names(saved)]
    if len(matches) == 1:
        return matches[0]
    labels = ", ".join(saved.label for saved in (matches or runs))
    if matches:
        raise InputError(f"--verdicts {name}=…: {len(matches)} runs match {name!r} ({labels}); give the file path")
    raise InputError(f"--verdicts {name}=…: no run {name!r}; the runs are {labels}")


def _run_names(saved: SavedRun) -> set[str]:
    names = {saved.label, saved.run.label}
    path = saved.run.path
    if path is not None:
        names |= {path.name, str(path), str(path.resolve()), path.stem[:4]}
    return names


def _apply_verdict_files(history: History, runs: Sequence[SavedRun], files: Sequence[tuple[str | None, Path]]) -> None:
    history.rule = "verdicts from " + ", ".join(str(path) for _, path in files) + " (written by --tee-verdicts)"
    for run_name, path in files:
        relevant = [v for v in load_verdicts(path) if _names_benchmark(str(v["benchmark"]), history.benchmark)]
        if not relevant:
            history.notes.append(f"{path}: no verdict for {history.benchmark}")
            continue
        point, how = _point_for(history, runs, run_name, relevant)
        if point is None:
            history.notes.append(f"{path}: its run is not in this history ({how})")
            continue
        regressed = [v for v in relevant if v["outcome"] == "regressed"]
        chosen = (
            regressed[0] if regressed else next((v for v in relevant if v["metric"] == history.metric), relevant[0])
        )
        point.outcome = str(chosen["outcome"])
        point.outcome_detail = f"{chosen['metric']} {chosen['outcome']} per {path.name} ({how})"


def _names_benchmark(name: str, fullname: str) -> bool:
    return name == fullname or fullname.endswith("::" + name)


def _point_for(
    history: History, runs: Sequence[SavedRun], run_name: str | None, verdicts: Sequence[Mapping[str, Any]]
) -> tuple[HistoryPoint | None, str]:
    """Which run a verdicts file speaks about: named on the command line, named in the verdicts, or the newest."""
    if run_name is not None:
        saved = find_run(runs, run_name)
        return next((p for p in history.points if p.saved is saved), None), f"run {saved.label} given"
    for verdict in verdicts:
        for key in ("head_run", "run"):
            if isinstance(verdict.get(key), str):
                saved = find_run(runs, verdict[key])
                return next((p for p in history.points if p.saved is saved), None), "run named in the verdict"
        head = verdict.get("head")
        value = head.get("median") if isinstance(head, Mapping) else head
        if verdict.get("metric") == history.metric and isinstance(value, (int, float)):
            for point in history.points:
                if math.isclose(point.estimate.median, float(value), rel_tol=1e-9):
                    return point, "matched by the verdict's head median"
    return history.points[-1], "assumed to be the newest run"
