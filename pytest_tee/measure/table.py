"""The end-of-session terminal table: medians per checkpoint × environment × workload shape."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

COLUMNS = (
    ("checkpoint", "<"),
    ("env", "<"),
    ("engine", "<"),
    ("weights", "<"),
    ("dtype", "<"),
    ("shape", "<"),
    ("decode tok/s", ">"),
    ("prefill tok/s", ">"),
    ("e2e tok/s", ">"),
    ("TTFT ms", ">"),
    ("rounds", ">"),
)


def significant(value: float, digits: int = 3) -> str:
    """3 significant digits without exponent noise: 0.0123, 4.12, 412, 41200."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _median(record: dict[str, Any], metric: str, scale: float = 1.0) -> str:
    summary = record.get("metrics", {}).get(metric)
    if not summary:
        return "-"
    low, high = (bound * scale for bound in summary["ci95"])
    return f"{significant(summary['median'] * scale)} ({significant(low)}–{significant(high)})"


def result_row(record: dict[str, Any]) -> tuple[str, ...]:
    workload = record.get("workload", {})
    shape = f"{workload.get('prompt_tokens')}+{workload.get('new_tokens')}x{workload.get('batch')}"
    return (
        str(record.get("checkpoint", {}).get("id", "?")),
        str(record.get("execution_env", "?")),
        str((record.get("engine") or {}).get("name", "transformers")),
        str(record.get("weights", "?")),
        str(record.get("dtype", "?")),
        shape,
        _median(record, "decode_tps"),
        _median(record, "prefill_tps"),
        _median(record, "e2e_tps"),
        _median(record, "ttft_s", 1e3),
        str(record.get("rounds", "?")),
    )


def format_table(header: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [tuple(row) for row in rows]
    widths = [
        max(len(name), *(len(row[i]) for row in rows)) if rows else len(name) for i, (name, _) in enumerate(header)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if align == "<" else cell.rjust(width)
            for cell, width, (_, align) in zip(cells, widths, header, strict=True)
        ).rstrip()

    return [line([name for name, _ in header]), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


FOOTNOTE = "median (95% CI of the median) over the measured rounds"


def session_rows(results: Iterable[Any]) -> list[tuple[str, ...]]:
    """Rows sorted by checkpoint, environment, then workload shape."""

    def order(record: dict[str, Any]) -> tuple[Any, ...]:
        workload = record.get("workload", {})
        shape = tuple(workload.get(key) or 0 for key in ("prompt_tokens", "new_tokens", "batch"))
        engine = record.get("engine") or {}
        return (
            str(record.get("checkpoint", {}).get("id")),
            str(record.get("execution_env")),
            str(engine.get("name", "transformers")),
            str(record.get("dtype")),
            *shape,
        )

    return [result_row(record) for record in sorted((result.record for result in results), key=order)]


def session_table(results: Iterable[Any]) -> list[str]:
    """The terminal table; values are medians with the 95 % CI of the median."""
    return [*format_table(COLUMNS, session_rows(results)), FOOTNOTE]


def markdown_table(results: Iterable[Any]) -> str:
    """The same table as GitHub-flavoured markdown."""
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |"]
    lines.append("|" + "|".join("---:" if align == ">" else "---" for _, align in COLUMNS) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in session_rows(results)]
    return "\n".join([*lines, "", f"<sub>{FOOTNOTE}</sub>"])
