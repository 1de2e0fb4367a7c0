"""The report as a terminal table, markdown, JSON and a self-contained HTML page.

Markdown and HTML put the environments side by side (one column group each) with the ratio columns after
them; the terminal table lists one line per checkpoint × workload × environment instead, so that it fits a
terminal, followed by a ratio table with the same rows. JSON holds every number any of them shows.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from typing import Any

from pytest_tee.report.history import History
from pytest_tee.report.model import Cell, Ratio, Report, Row
from pytest_tee.stats import CI_LEVEL
from pytest_tee.text import Table, gigabytes, markdown_table, number, percent, text_table, with_ci

JSON_SCHEMA = 1
PAPER = "arXiv 2502.11347"


def metric_cell(cell: Cell | None, metric: str) -> str:
    if cell is None or metric not in cell.estimates:
        return "–"
    found = cell.estimates[metric]
    scale = 1000.0 if metric == "ttft_s" else 1.0  # TTFT shown in ms
    return with_ci(found.median, found.ci95, scale)


def ratio_cell(ratio: Ratio | None) -> str:
    if ratio is None:
        return "–"
    return with_ci(ratio.value, ratio.ci95) + (" †" if ratio.differences else "")


def overhead_cell(ratio: Ratio | None) -> str:
    if ratio is None or ratio.overhead is None:
        return "–"
    value, ci = ratio.overhead
    return percent(value, ci)


def roofline_cell(cell: Cell | None) -> str:
    if cell is None or cell.roofline is None:
        return "–"
    return percent(cell.roofline.fraction, cell.roofline.fraction_ci95)


METRIC_HEADERS = {"decode_tps": "decode tok/s", "e2e_tps": "e2e tok/s", "ttft_s": "TTFT ms"}


def wide_table(report: Report) -> Table:
    """One row per checkpoint × workload; a column group per environment; the ratio columns last."""
    per_env = list(METRIC_HEADERS.values()) + (["% of BW limit"] if report.has_roofline else [])
    headers = ["checkpoint", *_engine_headers(report), "size", "prompt/new/batch"]
    groups: list[tuple[str, int]] = [("", len(headers))]
    for env in report.environments:
        headers += per_env
        groups.append((env, len(per_env)))
    ratio_headers: list[str] = []
    for kind in report.ratio_kinds:
        ratio_headers.append(kind.label)
        if kind.is_tee:
            ratio_headers.append(kind.overhead_label)
    if ratio_headers:
        headers += ratio_headers
        groups.append((f"ratios of median {report.metric}", len(ratio_headers)))
    rows: list[list[str]] = []
    for row in report.rows:
        line = [row.checkpoint, *_engine_cells(report, row), row.size_label, row.workload.label]
        for env in report.environments:
            cell = row.cells.get(env)
            line += [metric_cell(cell, metric) for metric in METRIC_HEADERS]
            if report.has_roofline:
                line.append(roofline_cell(cell))
        line += _ratio_cells(report, row)
        rows.append(line)
    first = 3 + len(_engine_headers(report))
    return Table(headers, rows, groups, folded_groups=frozenset(report.environments), numeric_from=first)


def long_table(report: Report) -> Table:
    """One line per checkpoint × workload × environment (the terminal's throughput table)."""
    headers = ["checkpoint", *_engine_headers(report), "size", "prompt/new/batch", "env", *METRIC_HEADERS.values()]
    headers += ["% of BW limit"] if report.has_roofline else []
    headers += ["dtype", "threads", "run"]
    rows: list[list[str]] = []
    for row in report.rows:
        for env, cell in row.cells.items():
            line = [row.checkpoint, *_engine_cells(report, row), row.size_label, row.workload.label, env]
            line += [metric_cell(cell, metric) for metric in METRIC_HEADERS]
            line += [roofline_cell(cell)] if report.has_roofline else []
            line += [str(cell.dtype or "?"), str(cell.threads if cell.threads is not None else "?"), cell.run_label]
            rows.append(line)
    text = frozenset({headers.index("dtype"), headers.index("run")})
    return Table(headers, rows, numeric_from=4 + len(_engine_headers(report)), text_columns=text)


def _ratio_cells(report: Report, row: Row) -> list[str]:
    """Each ratio of the report for this row, with the TEE overhead beside a TEE ratio."""
    cells = []
    for kind in report.ratio_kinds:
        ratio = row.ratios.get(kind.name)
        cells.append(ratio_cell(ratio))
        if kind.is_tee:
            cells.append(overhead_cell(ratio))
    return cells


def ratio_table(report: Report) -> Table | None:
    if not report.ratio_kinds:
        return None
    headers = ["checkpoint", *_engine_headers(report), "size", "prompt/new/batch"]
    for kind in report.ratio_kinds:
        headers.append(kind.label)
        if kind.is_tee:
            headers.append(kind.overhead_label)
    rows: list[list[str]] = []
    for row in report.rows:
        if not row.ratios:
            continue
        line = [row.checkpoint, *_engine_cells(report, row), row.size_label, row.workload.label]
        line += _ratio_cells(report, row)
        rows.append(line)
    return Table(headers, rows, numeric_from=3 + len(_engine_headers(report))) if rows else None


def means_table(report: Report) -> Table | None:
    if not report.means:
        return None
    rows = [
        [
            mean.kind.label,
            *([mean.engine, mean.quantization or "dtype"] if report.has_engines else []),
            mean.workload.label,
            with_ci(mean.value, mean.ci95),
            ", ".join(f"{checkpoint} {number(value)}" for checkpoint, value in mean.members),
        ]
        for mean in report.means
    ]
    extra = len(_engine_headers(report))
    return Table(
        ["ratio", *_engine_headers(report), "prompt/new/batch", "mean [95 % CI]", "averaged over"],
        rows,
        numeric_from=2 + extra,
        text_columns=frozenset({3 + extra}),
    )


def roofline_table(report: Report) -> Table | None:
    if not report.has_roofline:
        return None
    headers = [
        "checkpoint",
        *_engine_headers(report),
        "prompt/new/batch",
        "env",
        "dtype",
        "GB read per step",
        "decode tok/s",
        "achieved GB/s",
        "bandwidth GB/s",
        "% of limit [95 % CI]",
        "bandwidth from",
    ]
    rows: list[list[str]] = []
    for row in report.rows:
        for env, cell in row.cells.items():
            line = [row.checkpoint, *_engine_cells(report, row), row.workload.label, env, str(cell.dtype or "?")]
            if cell.roofline is None:
                rows.append([*line, "–", "–", "–", "–", "–", cell.roofline_missing or ""])
                continue
            roof = cell.roofline
            rows.append(
                [
                    *line,
                    gigabytes(roof.bytes_per_step),
                    number(cell.estimates["decode_tps"].median),
                    number(roof.achieved_gbps),
                    number(roof.bandwidth_gbps),
                    percent(roof.fraction, roof.fraction_ci95),
                    roof.bandwidth_source,
                ]
            )
    extra = len(_engine_headers(report))
    return Table(headers, rows, numeric_from=4 + extra, text_columns=frozenset({9 + extra}))


def _engine_headers(report: Report) -> list[str]:
    return ["engine", "quant"] if report.has_engines else []


def _engine_cells(report: Report, row: Row) -> list[str]:
    if not report.has_engines:
        return []
    # transformers rows may hold cells of several dtypes (auto picks per device): name them all.
    precision = row.quantization or "/".join(sorted({str(cell.dtype or "?") for cell in row.cells.values()}))
    return [row.engine, precision]


def roofline_lines(report: Report) -> list[str]:
    """The roofline's approximations, each once, with the checkpoints they apply to."""
    where: dict[str, list[str]] = {}
    for row in report.rows:
        for cell in row.cells.values():
            for note in cell.roofline.notes if cell.roofline else ():
                checkpoints = where.setdefault(note, [])
                if row.checkpoint not in checkpoints:
                    checkpoints.append(row.checkpoint)
    lines = [f"{note}: {', '.join(checkpoints)}" for note, checkpoints in where.items()]
    return [ROOFLINE_METHOD, *lines]


ROOFLINE_METHOD = (
    "bytes read per decode step = weights in the run's dtype + batch × KV-cache bytes per token × mean context "
    "(prompt + new/2); % of limit = decode tok/s ÷ batch × bytes per step ÷ read bandwidth"
)


def history_table(history: History) -> Table:
    unit = "ms" if history.metric == "ttft_s" else None
    scale = 1000.0 if unit else 1.0
    rows = [
        [
            point.saved.label,
            point.saved.when,
            point.execution_env,
            with_ci(point.estimate.median, point.estimate.ci95, scale),
            str(point.estimate.n),
            (point.outcome or "–") + (" (environment changed)" if point.environment_changed else ""),
            point.outcome_detail,
        ]
        for point in history.points
    ]
    name = f"median {history.metric}" + (f" ({unit})" if unit else "") + " [95 % CI]"
    return Table(
        ["run", "time", "env", name, "rounds", "verdict", "detail"],
        rows,
        numeric_from=3,
        text_columns=frozenset({5, 6}),
    )


def comparability_lines(report: Report) -> list[str]:
    lines: list[str] = []
    for row in report.rows:
        for ratio in row.ratios.values():
            if ratio.differences:
                listed = "; ".join(d.describe(ratio.kind.numerator, ratio.kind.denominator) for d in ratio.differences)
                lines.append(
                    f"{row.checkpoint} {row.workload.label} {ratio.kind.label} {number(ratio.value)}: "
                    f"besides {_purpose(ratio)}, the two sides differ in {listed}"
                )
    return lines


def _purpose(ratio: Ratio) -> str:
    return {"gpu-cpu": "the device", "tee-cpu": "the TEE", "tee-gpu": "the TEE"}.get(ratio.kind.kind, "the purpose")


def runs_lines(report: Report) -> list[str]:
    lines = []
    for saved in report.runs:
        envs = sorted({m.execution_env for m in saved.run.measurements})
        path = f" {saved.run.path}" if saved.run.path else ""
        lines.append(
            f"{saved.label} ({saved.when}; tee {saved.run.tee}; {', '.join(envs)}; "
            f"fingerprint {saved.run.fingerprint or '?'}){path}"
        )
    return lines


def method_line(report: Report) -> str:
    return (
        f"Medians over the measured rounds with the distribution-free 95 % CI of the median; ratios of medians of "
        f"{report.metric} with a percentile-bootstrap {CI_LEVEL * 100:.0f} % CI ({report.resamples} resamples, seed "
        f"{report.seed}); † marks ratios whose two sides differ in more than what the ratio compares (see "
        f"comparability). TTFT in milliseconds."
    )


# ---------------------------------------------------------------------------------------------------------------
# Terminal


def serving_table(report: Report) -> Table | None:
    """Serving load levels, beside the throughput rows and never ratioed against them (report.serving)."""
    from pytest_tee.report import serving

    found = serving.rows(report.runs)
    if not found:
        return None
    return Table(list(serving.HEADERS), found, numeric_from=6, text_columns=frozenset({12}))


SERVING_TITLE = "Serving under load (tee_load levels; beside the rows above, never ratioed against them)"


def to_text(report: Report) -> str:
    parts = [f"pytest-tee report — {len(report.runs)} run(s)", *("  " + line for line in runs_lines(report)), ""]
    if report.rows:
        parts += ["Throughput (median [95 % CI])", text_table(long_table(report)), ""]
    loads = serving_table(report)
    if loads:
        parts += [SERVING_TITLE, text_table(loads), ""]
    ratios = ratio_table(report)
    if ratios:
        parts += [f"Ratios of median {report.metric} [95 % bootstrap CI]", text_table(ratios), ""]
    means = means_table(report)
    if means:
        parts += ["Mean ratio across model sizes", text_table(means), ""]
    _text_section(parts, "Comparability († above)", comparability_lines(report))
    roof = roofline_table(report)
    if roof:
        parts += ["Memory-bandwidth limit", text_table(roof), *(f"- {line}" for line in roofline_lines(report)), ""]
    _text_section(parts, f"The paper's claims ({PAPER}; qualitative)", _finding_lines(report))
    if report.history is not None:
        parts += [f"History of {report.history.benchmark}", text_table(history_table(report.history))]
        parts += [f"verdicts: {report.history.rule}", ""]
        _text_section(parts, "History notes", report.history.notes)
    _text_section(parts, "Notes", [*report.notes, method_line(report)])
    return "\n".join(parts).rstrip() + "\n"


def _text_section(parts: list[str], title: str, lines: Sequence[str]) -> None:
    if lines:
        parts += [title, *(f"- {line}" for line in lines), ""]


def _finding_lines(report: Report) -> list[str]:
    return [f"paper: {finding.claim}. These runs: {finding.observed}" for finding in report.findings]


# ---------------------------------------------------------------------------------------------------------------
# Markdown


def to_markdown(report: Report) -> str:
    parts = ["## pytest-tee report", "", f"{len(report.runs)} run(s):", ""]
    parts += [f"- {line}" for line in runs_lines(report)] + [""]
    if report.rows:
        parts += ["### Throughput and ratios", "", markdown_table(wide_table(report)), "", method_line(report), ""]
    loads = serving_table(report)
    if loads:
        parts += [f"### {SERVING_TITLE}", "", markdown_table(loads), ""]
    means = means_table(report)
    if means:
        parts += ["### Mean ratio across model sizes", "", markdown_table(means), ""]
    _markdown_section(parts, "Comparability", comparability_lines(report))
    roof = roofline_table(report)
    if roof:
        parts += ["### Memory-bandwidth limit", "", markdown_table(roof), ""]
        parts += [*(f"- {line}" for line in roofline_lines(report)), ""]
    _markdown_section(parts, f"The paper's claims ({PAPER}; qualitative)", _finding_lines(report))
    if report.history is not None:
        parts += [f"### History of `{report.history.benchmark}`", "", markdown_table(history_table(report.history))]
        parts += ["", f"Verdicts: {report.history.rule}", ""]
        parts += [f"- {line}" for line in report.history.notes] + ([""] if report.history.notes else [])
    _markdown_section(parts, "Notes", report.notes)
    return "\n".join(parts).rstrip() + "\n"


def _markdown_section(parts: list[str], title: str, lines: Sequence[str]) -> None:
    if lines:
        parts += [f"### {title}", "", *(f"- {line}" for line in lines), ""]


# ---------------------------------------------------------------------------------------------------------------
# JSON


def to_json_document(report: Report) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "ratio_metric": report.metric,
        "bootstrap": {"method": "percentile", "resamples": report.resamples, "seed": report.seed, "level": CI_LEVEL},
        "environments": list(report.environments),
        "ratios": [
            {"name": k.name, "label": k.label, "numerator": k.numerator, "denominator": k.denominator, "kind": k.kind}
            for k in report.ratio_kinds
        ],
        "runs": [
            {
                "label": saved.label,
                "path": str(saved.run.path) if saved.run.path else None,
                "datetime": saved.run.datetime,
                "tee": saved.run.tee,
                "platform": saved.run.environment.get("platform"),
                "fingerprint": saved.run.fingerprint,
                "execution_envs": sorted({m.execution_env for m in saved.run.measurements}),
                "bandwidth_read_gbps": saved.recorded_bandwidth_gbps,
            }
            for saved in report.runs
        ],
        "rows": [_row_json(row) for row in report.rows],
        "serving_levels": _serving_json(report),
        "means": [
            {
                "ratio": mean.kind.name,
                "label": mean.kind.label,
                "metric": report.metric,
                "workload": mean.workload.to_dict(),
                "engine": mean.engine,
                "quantization": mean.quantization,
                "value": mean.value,
                "ci95": list(mean.ci95) if mean.ci95 else None,
                "members": [{"checkpoint": checkpoint, "ratio": value} for checkpoint, value in mean.members],
            }
            for mean in report.means
        ],
        "findings": [{"claim": finding.claim, "observed": finding.observed} for finding in report.findings],
        "notes": list(report.notes),
        "history": report.history.to_dict() if report.history is not None else None,
    }


def _serving_json(report: Report) -> list[dict[str, Any]]:
    from pytest_tee.report import serving

    return serving.to_json(report.runs)


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "checkpoint": row.checkpoint,
        "parameters": row.parameters,
        "size": row.size_label,
        "workload": row.workload.to_dict(),
        "engine": row.engine,
        "quantization": row.quantization,
        "cells": {env: _cell_json(cell) for env, cell in row.cells.items()},
        "ratios": {name: _ratio_json(ratio) for name, ratio in row.ratios.items()},
    }


def _cell_json(cell: Cell) -> dict[str, Any]:
    return {
        "run": cell.run_label,
        "fullname": cell.source.entry.fullname,
        "dtype": cell.dtype,
        "weights": cell.weights,
        "threads": cell.threads,
        "metrics": {name: found.to_dict() for name, found in cell.estimates.items()},
        "roofline": cell.roofline.to_dict() if cell.roofline else None,
        "roofline_missing": cell.roofline_missing if cell.roofline is None else None,
        "superseded": [{"run": source.saved.label, "fullname": source.entry.fullname} for source in cell.superseded],
    }


def _ratio_json(ratio: Ratio) -> dict[str, Any]:
    overhead = ratio.overhead
    return {
        "label": ratio.kind.label,
        "numerator": ratio.kind.numerator,
        "denominator": ratio.kind.denominator,
        "metric": ratio.metric,
        "value": ratio.value,
        "ci95": list(ratio.ci95) if ratio.ci95 else None,
        "overhead": overhead[0] if overhead else None,
        "overhead_ci95": list(overhead[1]) if overhead and overhead[1] else None,
        "differences": [difference.to_dict() for difference in ratio.differences],
    }


def to_json(report: Report) -> str:
    return json.dumps(to_json_document(report), indent=2, default=str) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# HTML


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222;max-width:110rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}
th{background:#f3f3f3}th.group{background:#e4e9f2}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:#555;font-size:.85rem}img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
code{background:#f6f6f6;padding:0 .2rem}
"""


def html_table(table: Table) -> str:
    esc = html.escape
    out = ["<table>"]
    if table.groups and any(label for label, _ in table.groups):
        cells = "".join(
            f'<th class="group" colspan="{span}">{esc(label)}</th>' if label else f'<th colspan="{span}"></th>'
            for label, span in table.groups
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("<tr>" + "".join(f"<th>{esc(header)}</th>" for header in table.headers) + "</tr>")
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{esc(value)}</td>' if table.is_numeric(index) else f"<td>{esc(value)}</td>"
            for index, value in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def to_html(report: Report, images: Sequence[tuple[str, bytes, str]] = (), image_note: str | None = None) -> str:
    """A single page: inline CSS, images embedded as data URIs, nothing fetched from anywhere.

    ``images``: (title, bytes, MIME type) of the plots to embed.
    """
    esc = html.escape
    body = [f"<h1>pytest-tee report</h1><p>{len(report.runs)} run(s):</p><ul>"]
    body += [f"<li>{esc(line)}</li>" for line in runs_lines(report)] + ["</ul>"]
    body += [
        "<h2>Throughput and ratios</h2>",
        html_table(wide_table(report)),
        f'<p class="note">{esc(method_line(report))}</p>',
    ]
    loads = serving_table(report)
    if loads:
        body += [f"<h2>{html.escape(SERVING_TITLE)}</h2>", html_table(loads)]
    means = means_table(report)
    if means:
        body += ["<h2>Mean ratio across model sizes</h2>", html_table(means)]
    _html_section(body, "Comparability", comparability_lines(report))
    roof = roofline_table(report)
    if roof:
        body += ["<h2>Memory-bandwidth limit</h2>", html_table(roof), '<ul class="note">']
        body += [f"<li>{esc(line)}</li>" for line in roofline_lines(report)] + ["</ul>"]
    _html_section(body, f"The paper's claims ({PAPER}; qualitative)", _finding_lines(report))
    if report.history is not None:
        body += [
            f"<h2>History of <code>{esc(report.history.benchmark)}</code></h2>",
            html_table(history_table(report.history)),
        ]
        body += [f'<p class="note">Verdicts: {esc(report.history.rule)}</p>']
        body += [f'<p class="note">{esc(line)}</p>' for line in report.history.notes]
    if images or image_note:
        body.append("<h2>Plots</h2>")
    for title, data, mime in images:
        encoded = base64.b64encode(data).decode("ascii")
        body.append(
            f'<figure><img alt="{esc(title)}" src="data:{mime};base64,{encoded}">'
            f"<figcaption>{esc(title)}</figcaption></figure>"
        )
    if image_note:
        body.append(f'<p class="note">{esc(image_note)}</p>')
    _html_section(body, "Notes", report.notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pytest-tee report</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _html_section(body: list[str], title: str, lines: Sequence[str]) -> None:
    if lines:
        body += [f"<h2>{html.escape(title)}</h2><ul>", *(f"<li>{html.escape(line)}</li>" for line in lines), "</ul>"]
