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

    rounds = [result.record for result in results if "load" not in result.record]
    return [result_row(record) for record in sorted(rounds, key=order)]


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


def load_row(record: dict[str, Any]) -> tuple[str, ...]:
    workload = record.get("workload", {})
    load = record.get("load", {})
    shape = load.get("shape", {})
    level = f"c{shape['concurrency']}" if "concurrency" in shape else f"r{shape.get('rate', 0):g}/s"
    server = (record.get("engine") or {}).get("build", {}).get("server", {})
    serving = record.get("serving", {})
    levels = load.get("levels", [])
    failed = sum(int(item.get("failed", 0)) for item in levels)
    sent = sum(int(item.get("sent", 0)) for item in levels)
    return (
        str(record.get("checkpoint", {}).get("id", "?")),
        f"{server.get('kind', '?')}",
        f"{serving.get('location', '?')} {serving.get('host', '')}".strip(),
        f"{level} x{shape.get('requests', '?')}",
        f"{workload.get('prompt_tokens')}+{workload.get('new_tokens')}",
        _median(record, "output_tps"),
        _median(record, "request_rate"),
        _median(record, "ttft_p50_s", 1e3),
        _median(record, "ttft_p99_s", 1e3),
        _median(record, "itl_p99_ms"),
        f"{failed}/{sent}",
        str(record.get("rounds", "?")),
    )


def load_rows(results: Iterable[Any]) -> list[tuple[str, ...]]:
    def order(record: dict[str, Any]) -> tuple[Any, ...]:
        shape = record.get("load", {}).get("shape", {})
        return (str(record.get("checkpoint", {}).get("id")), shape.get("concurrency") or 0, shape.get("rate") or 0)

    loads = [result.record for result in results if "load" in result.record]
    return [load_row(record) for record in sorted(loads, key=order)]


LOAD_FOOTNOTE = "load levels: median (95% CI of the median) over the measured levels; failed = failed/sent requests"


def session_table(results: Iterable[Any]) -> list[str]:
    """The terminal tables; values are medians with the 95 % CI of the median."""
    results = list(results)
    lines: list[str] = []
    rows = session_rows(results)
    if rows:
        lines += [*format_table(COLUMNS, rows), FOOTNOTE]
    loads = load_rows(results)
    if loads:
        lines += [*format_table(LOAD_COLUMNS, loads), LOAD_FOOTNOTE]
    return lines


def markdown_table(results: Iterable[Any]) -> str:
    """The same tables as GitHub-flavoured markdown."""
    results = list(results)
    parts: list[str] = []
    for columns, rows, footnote in (
        (COLUMNS, session_rows(results), FOOTNOTE),
        (LOAD_COLUMNS, load_rows(results), LOAD_FOOTNOTE),
    ):
        if not rows:
            continue
        lines = ["| " + " | ".join(name for name, _ in columns) + " |"]
        lines.append("|" + "|".join("---:" if align == ">" else "---" for _, align in columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("\n".join([*lines, "", f"<sub>{footnote}</sub>"]))
    return "\n\n".join(parts)
