"""The end-of-session terminal table: medians per checkpoint × environment × workload shape."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pytest_tee.records import StoredMeasurement
from pytest_tee.results import BenchmarkEntry

COLUMNS = (
    ("checkpoint", "<"),
    ("env", "<"),
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


def _median(measurement: StoredMeasurement, metric: str, scale: float = 1.0) -> str:
    summary = measurement.stored_summary(metric)
    if not summary:
        return "-"
    low, high = (bound * scale for bound in summary["ci95"])
    return f"{significant(summary['median'] * scale)} ({significant(low)}–{significant(high)})"


def result_row(measurement: StoredMeasurement) -> tuple[str, ...]:
    workload = measurement.workload
    shape = f"{workload.prompt_tokens}+{workload.new_tokens}x{workload.batch}"
    return (
        measurement.checkpoint.id,
        measurement.execution_env,
        str(measurement.weights or "?"),
        str(measurement.dtype or "?"),
        shape,
        _median(measurement, "decode_tps"),
        _median(measurement, "prefill_tps"),
        _median(measurement, "e2e_tps"),
        _median(measurement, "ttft_s", 1e3),
        str(measurement.rounds),
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


def session_rows(results: Iterable[BenchmarkEntry]) -> list[tuple[str, ...]]:
    """Rows sorted by checkpoint, environment, then workload shape."""

    def order(measurement: StoredMeasurement) -> tuple[str, str, int, int, int]:
        prompt, new, batch = (value or 0 for value in measurement.workload.shape)
        return (measurement.checkpoint.id, measurement.execution_env, prompt, new, batch)

    return [result_row(m) for m in sorted((entry.measurement for entry in results), key=order)]


def session_table(results: Iterable[BenchmarkEntry]) -> list[str]:
    """The terminal table; values are medians with the 95 % CI of the median."""
    return [*format_table(COLUMNS, session_rows(results)), FOOTNOTE]


def markdown_table(results: Iterable[BenchmarkEntry]) -> str:
    """The same table as GitHub-flavoured markdown."""
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |"]
    lines.append("|" + "|".join("---:" if align == ">" else "---" for _, align in COLUMNS) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in session_rows(results)]
    return "\n".join([*lines, "", f"<sub>{FOOTNOTE}</sub>"])
