"""The gate's output: a terminal table, the same as markdown (``--tee-summary``, ``$GITHUB_STEP_SUMMARY``), and
the verdicts as JSON (``--tee-verdicts``, ``pytest-tee compare --format json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pytest_tee.baseline.compare import Comparison
from pytest_tee.baseline.models.sessions import FALLBACK_NOISE_RATIO
from pytest_tee.records import Verdict
from pytest_tee.saved_runs import Run
from pytest_tee.text import Table, markdown_table, md_escape, number, text_table

VERDICTS_SCHEMA = 1
NAME_WIDTH = 60
_MARKS = {"regressed": "✗", "improved": "↑", "unchanged": "=", "inconclusive": "?"}
_BOUNDARIES = ("::", "/")


def short_names(fullnames: Sequence[str], width: int = NAME_WIDTH) -> tuple[str, dict[str, str]]:
    """(common prefix, fullname → short name): the shared ``path/file.py::`` prefix dropped, long names cut in the
    middle (the parametrization at the end says most, so more of the tail is kept). Short names stay unique.
    """
    names = list(dict.fromkeys(fullnames))
    if not names:
        return "", {}
    prefix = _common_boundary_prefix(names)
    short = {name: _ellipsize(name[len(prefix) :], width) for name in names}
    if len(set(short.values())) < len(short):
        short = {name: name[len(prefix) :] for name in names}  # cutting made two the same: keep them whole
    return prefix, short


def _common_boundary_prefix(names: list[str]) -> str:
    common = names[0]
    for name in names[1:]:
        while not name.startswith(common):
            common = common[:-1]
    # Never cut into the test function's own name (the part after the last "::").
    limit = min(name.rfind("::") + 2 if "::" in name else 0 for name in names)
    common = common[:limit]
    cut = max((common.rfind(boundary) + len(boundary) for boundary in _BOUNDARIES if boundary in common), default=0)
    return common[:cut]


def _ellipsize(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    head = (width - 1) // 3
    return text[:head] + "…" + text[-(width - 1 - head) :]


def _unit(metric: str) -> str:
    from pytest_tee.measure.metrics import METRICS

    return METRICS[metric].unit if metric in METRICS else ""


def _ratio_cell(verdict: Verdict) -> str:
    low, high = verdict.ci95
    if not math.isfinite(verdict.ratio):
        return "–"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{verdict.ratio:.3f}"
    return f"{verdict.ratio:.3f} [{low:.3f}, {high:.3f}]"


def _change_cell(verdict: Verdict) -> str:
    return f"{verdict.change_pct:+.1f} %" if math.isfinite(verdict.ratio) else "–"


def _verdict_cell(verdict: Verdict) -> str:
    text = f"{_MARKS.get(verdict.outcome, '')} {verdict.outcome}".strip()
    hint = verdict.hint
    if verdict.outcome == "inconclusive" and hint is not None:
        if hint.unit == "ab blocks":
            text += f" (ab --blocks {hint.count})"
        else:
            text += f" (+{hint.count} {hint.unit})"
    return text


def _rows(comparison: Comparison, short: dict[str, str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for verdict in comparison.verdicts:
        unit = _unit(verdict.metric)
        rows.append(
            (
                short.get(verdict.benchmark, verdict.benchmark),
                verdict.metric + (f" ({unit})" if unit else ""),
                number(verdict.base),
                number(verdict.head),
                _ratio_cell(verdict),
                _change_cell(verdict),
                f"±{verdict.threshold_pct:g} %" if verdict.threshold_pct is not None else "–",
                _verdict_cell(verdict),
            )
        )
    return rows


COLUMNS = (
    ("benchmark", "<"),
    ("metric", "<"),
    ("base", ">"),
    ("head", ">"),
    ("head/base [95 % CI]", ">"),
    ("change", ">"),
    ("limit", ">"),
    ("verdict", "<"),
)


_MODEL_LEGEND = {
    "blocks": "judged by ABBA blocks: per block, head − base of the mean log session medians (a session's level is "
    "the median of its rounds); t-interval and t-test over blocks",
    "history": "judged as one head session against the stored baseline; the spread of up to 10 stored runs with "
    "this fingerprint measures the between-session noise, never taken below what the two sessions' own rounds "
    "imply (t-test)",
    "single": "judged as one session a side; the between-session noise is not measured (fewer than 3 stored runs) "
    f"and is assumed to be {FALLBACK_NOISE_RATIO:g} × the round-to-round noise (t-test)",
    "rounds": "judged on rounds as exchangeable samples: bootstrap CI of the ratio of medians and a one-sided "
    "Mann–Whitney test",
}


def legend(comparison: Comparison) -> list[str]:
    tested = sum(1 for verdict in comparison.verdicts if verdict.detail.p_value is not None)
    family = f", Holm-corrected over {tested} comparisons" if tested > 1 else ""
    models = list(dict.fromkeys(verdict.model for verdict in comparison.verdicts if verdict.detail.p_value is not None))
    return [
        "✗ regressed: worse than base by more than the limit, with confidence: the 95 % CI of head/base excludes 1 "
        f"and a one-sided test gives p ≤ {comparison.alpha:g}{family}",
        "↑ improved: the same in the good direction · = unchanged: the whole CI lies within ±limit",
        "? inconclusive: neither yet; (+N blocks / stored runs / rounds) is about how many more would likely decide "
        "it; (ab --blocks N) names the same-runner A/B that would likely decide it",
        *(_MODEL_LEGEND[model] for model in models if model in _MODEL_LEGEND),
    ]


def _context_lines(comparison: Comparison, prefix: str) -> list[str]:
    lines = [f"base: {_describe_run(comparison.base)}", f"head: {_describe_run(comparison.head)}"]
    if prefix:
        lines.append(f"benchmarks: names below are relative to {prefix}")
    return lines


def _describe_run(run: Run) -> str:
    where = str(run.path) if run.path is not None else run.label
    commit = str(run.commit.get("id", ""))[:12]
    parts = [where]
    if commit and commit != "unknown":
        parts.append(f"commit {commit}")
    if run.datetime:
        parts.append(run.datetime[:19].replace("T", " "))
    parts.append(f"env {run.tee}, fingerprint {run.fingerprint or '?'}")
    return ", ".join(parts)


_SHARED_NOTE = "between-session noise not measured"  # the fallback's caveat: said once, not on every line


def _notes(comparison: Comparison, short: dict[str, str]) -> list[str]:
    lines: list[str] = []
    shared: list[str] = []
    for v in comparison.verdicts:
        parts = [part for part in v.note.split("; ") if part]
        shared += [part for part in parts if part.startswith(_SHARED_NOTE) and part not in shared]
        own = "; ".join(part for part in parts if not part.startswith(_SHARED_NOTE))
        if own and v.outcome != "unchanged":
            lines.append(f"{short.get(v.benchmark, v.benchmark)} {v.metric}: {own}")
    lines += shared
    lines += [f"compared despite differences — {mismatch.describe()}" for mismatch in comparison.mismatches]
    lines += [f"not compared: {name}" for name in comparison.unmatched]
    lines += [
        f"not measured on either side: {short.get(name, name)} {metric}" for name, metric in comparison.not_applicable
    ]
    if not comparison.verdicts:
        lines.append("nothing was compared: no benchmark is in both runs with a gated metric")
    return lines


def summary_line(comparison: Comparison) -> str:
    counts = comparison.counts()
    return ", ".join(f"{counts[outcome]} {outcome}" for outcome in counts)


def render_text(comparison: Comparison, *, title: str = "pytest-tee gate") -> str:
    prefix, short = short_names([verdict.benchmark for verdict in comparison.verdicts])
    table = text_table(Table.aligned(COLUMNS, _rows(comparison, short))).splitlines()
    lines = [f"{title}: {summary_line(comparison)}", *_context_lines(comparison, prefix), "", *table, ""]
    lines += [f"note: {line}" for line in _notes(comparison, short)]
    lines += legend(comparison)
    return "\n".join(lines) + "\n"


def render_markdown(comparison: Comparison, *, title: str = "pytest-tee gate") -> str:
    prefix, short = short_names([verdict.benchmark for verdict in comparison.verdicts])
    lines = [f"### {title}: {summary_line(comparison)}", ""]
    lines += [f"- {md_escape(line)}" for line in _context_lines(comparison, prefix)]
    lines += ["", markdown_table(Table.aligned(COLUMNS, _rows(comparison, short)))]
    notes = _notes(comparison, short)
    if notes:
        lines += ["", *(f"- {md_escape(note)}" for note in notes)]
    lines += ["", "<sub>" + "<br>".join(md_escape(line) for line in legend(comparison)) + "</sub>", ""]
    return "\n".join(lines)


def verdicts_document(comparison: Comparison, *, fail_inconclusive: bool = False) -> dict[str, Any]:
    """Everything the gate decided, as plain JSON-able data."""
    return {
        "schema": VERDICTS_SCHEMA,
        "base": _run_record(comparison.base),
        "head": _run_record(comparison.head),
        "rules": [{"metric": metric, "threshold_pct": pct} for metric, pct in comparison.rules],
        "alpha": comparison.alpha,
        "counts": comparison.counts(),
        "fail_inconclusive": fail_inconclusive,
        "exit_code": comparison.exit_code(fail_inconclusive),
        "verdicts": [verdict.to_json() for verdict in comparison.verdicts],
        "mismatches": [
            {
                "scope": mismatch.scope,
                "differences": [{"field": d.field, "base": d.base, "head": d.head} for d in mismatch.differences],
            }
            for mismatch in comparison.mismatches
        ],
        "base_only": list(comparison.base_only),
        "head_only": list(comparison.head_only),
        "not_applicable": [{"benchmark": name, "metric": metric} for name, metric in comparison.not_applicable],
    }


def render_json(comparison: Comparison, *, fail_inconclusive: bool = False) -> str:
    return json.dumps(verdicts_document(comparison, fail_inconclusive=fail_inconclusive), indent=2, default=str) + "\n"


def _run_record(run: Run) -> dict[str, Any]:
    return {
        "label": run.label,
        "path": str(run.path) if run.path is not None else None,
        "datetime": run.datetime or None,
        "commit": run.commit.get("id"),
        "tee": run.tee,
        "fingerprint": run.fingerprint,
    }
