"""The end-of-session terminal table: medians per checkpoint × environment × workload shape."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_tee.records import StoredMeasurement
from pytest_tee.saved_runs import BenchmarkEntry
from pytest_tee.text import Table, markdown_table, significant, text_table

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
        measurement.engine.name,
        str(measurement.weights or "?"),
        str(measurement.dtype or "?"),
        shape,
        _median(measurement, "decode_tps"),
        _median(measurement, "prefill_tps"),
        _median(measurement, "e2e_tps"),
        _median(measurement, "ttft_s", 1e3),
        str(measurement.rounds),
    )


FOOTNOTE = "median (95% CI of the median) over the measured rounds"


def session_rows(results: Iterable[BenchmarkEntry]) -> list[tuple[str, ...]]:
    """Rows sorted by checkpoint, environment, then workload shape."""

    def order(measurement: StoredMeasurement) -> tuple[str, str, str, str, int, int, int]:
        prompt, new, batch = (value or 0 for value in measurement.workload.shape)
        engine, precision = measurement.engine.name, str(measurement.dtype)
        return (measurement.checkpoint.id, measurement.execution_env, engine, precision, prompt, new, batch)

    return [result_row(m) for m in sorted((entry.measurement for entry in results), key=order)]


def session_table(results: Iterable[BenchmarkEntry]) -> list[str]:
    """The terminal table; values are medians with the 95 % CI of the median."""
    return [*text_table(Table.aligned(COLUMNS, session_rows(results))).splitlines(), FOOTNOTE]


def session_markdown(results: Iterable[BenchmarkEntry]) -> str:
    """The same table as GitHub-flavoured markdown."""
    return "\n".join([markdown_table(Table.aligned(COLUMNS, session_rows(results))), "", f"<sub>{FOOTNOTE}</sub>"])
