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

    rounds = [entry.measurement for entry in results if entry.measurement.load is None]
    return [result_row(m) for m in sorted(rounds, key=order)]


# Load levels (tee_load) are their own table: their metrics describe a server under load, not one request.
LOAD_COLUMNS = (
    ("checkpoint", "<"),
    ("server", "<"),
    ("where", "<"),
    ("load", "<"),
    ("shape", "<"),
    ("output tok/s", ">"),
    ("req/s", ">"),
    ("TTFT p50 ms", ">"),
    ("TTFT p99 ms", ">"),
    ("ITL p99 ms", ">"),
    ("failed", ">"),
    ("levels", ">"),
)
LOAD_FOOTNOTE = "load levels: median (95% CI of the median) over the measured levels; failed = failed/sent requests"


def load_row(measurement: StoredMeasurement) -> tuple[str, ...]:
    shape = measurement.load_shape
    level = f"c{shape['concurrency']}" if "concurrency" in shape else f"r{shape.get('rate', 0):g}/s"
    server = measurement.engine.build.get("server", {})
    failed, sent = measurement.requests_failed_and_sent()
    return (
        measurement.checkpoint.id,
        f"{server.get('kind', '?')}",
        measurement.served_from,
        f"{level} x{shape.get('requests', '?')}",
        f"{measurement.workload.prompt_tokens}+{measurement.workload.new_tokens}",
        _median(measurement, "output_tps"),
        _median(measurement, "request_rate"),
        _median(measurement, "ttft_p50_s", 1e3),
        _median(measurement, "ttft_p99_s", 1e3),
        _median(measurement, "itl_p99_ms"),
        f"{failed}/{sent}",
        str(measurement.rounds),
    )


def load_rows(results: Iterable[BenchmarkEntry]) -> list[tuple[str, ...]]:
    def order(measurement: StoredMeasurement) -> tuple[str, float, float]:
        shape = (measurement.load or {}).get("shape", {})
        return (measurement.checkpoint.id, shape.get("concurrency") or 0, shape.get("rate") or 0)

    loads = [entry.measurement for entry in results if entry.measurement.load is not None]
    return [load_row(m) for m in sorted(loads, key=order)]


def _tables(results: Iterable[BenchmarkEntry]) -> list[tuple[Table, str]]:
    results = list(results)
    tables = [
        (Table.aligned(COLUMNS, session_rows(results)), FOOTNOTE),
        (Table.aligned(LOAD_COLUMNS, load_rows(results)), LOAD_FOOTNOTE),
    ]
    return [(table, footnote) for table, footnote in tables if table.rows]


def session_table(results: Iterable[BenchmarkEntry]) -> list[str]:
    """The terminal tables; values are medians with the 95 % CI of the median."""
    return [line for table, footnote in _tables(results) for line in (*text_table(table).splitlines(), footnote)]


def session_markdown(results: Iterable[BenchmarkEntry]) -> str:
    """The same tables as GitHub-flavoured markdown."""
    return "\n\n".join(
        "\n".join([markdown_table(table), "", f"<sub>{footnote}</sub>"]) for table, footnote in _tables(results)
    )
