"""Serving runs under load (``tee_load`` levels) in the report: their own table beside the throughput table.

A load level measures a server handling many requests at once (output tok/s of the whole level, TTFT and ITL
percentiles over its requests); a throughput cell measures one request or one ``generate`` call at a time. The two
are listed side by side and never divided by each other: no ratio, mean or finding takes a load level. Levels of
one server form a sweep when their shapes differ only in concurrency (or rate), read top to bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_tee.report.data import SavedRun
from pytest_tee.saved_runs import BenchmarkEntry
from pytest_tee.text import number

HEADERS = [
    "checkpoint",
    "server",
    "where",
    "env",
    "load",
    "prompt/new",
    "output tok/s",
    "req/s",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "ITL p99 ms",
    "failed/sent",
    "run",
]
NOTE = (
    "serving levels (tee_load): medians over each benchmark's levels; a level's throughput is a server's under "
    "concurrent load and is listed beside the single-request rows, never ratioed against them"
)


@dataclass(frozen=True)
class Level:
    saved: SavedRun
    measurement: BenchmarkEntry

    def sort_key(self) -> tuple[Any, ...]:
        shape = self.measurement.measurement.load_shape
        return (
            self.measurement.checkpoint_id,
            _server(self.measurement),
            self.measurement.execution_env,
            shape.get("concurrency") or 0,
            shape.get("rate") or 0.0,
            self.saved.order,
        )


def load_levels(runs: Sequence[SavedRun]) -> list[Level]:
    levels = [Level(saved, m) for saved in runs for m in saved.run.measurements if is_load_level(m)]
    return sorted(levels, key=Level.sort_key)


def is_load_level(measurement: BenchmarkEntry) -> bool:
    return measurement.measurement.load is not None


def _server(measurement: BenchmarkEntry) -> str:
    server = measurement.measurement.engine.build.get("server", {})
    return f"{server.get('kind', '?')} {server.get('model', '')}".strip()


def _median(measurement: BenchmarkEntry, metric: str, scale: float = 1.0) -> str:
    summary = measurement.metrics.get(metric)
    return number(float(summary["median"]) * scale) if summary else "–"


def rows(runs: Sequence[SavedRun]) -> list[list[str]]:
    out = []
    for level in load_levels(runs):
        m = level.measurement
        shape = m.measurement.load_shape
        label = f"c{shape['concurrency']}" if "concurrency" in shape else f"{shape.get('rate', 0):g} req/s"
        failed, sent = m.measurement.requests_failed_and_sent()
        out.append(
            [
                m.checkpoint_id,
                _server(m),
                m.measurement.served_from,
                m.execution_env,
                f"{label} ×{shape.get('requests', '?')}",
                f"{m.measurement.workload.prompt_tokens}/{m.measurement.workload.new_tokens}",
                _median(m, "output_tps"),
                _median(m, "request_rate"),
                _median(m, "ttft_p50_s", 1e3),
                _median(m, "ttft_p99_s", 1e3),
                _median(m, "itl_p99_ms"),
                f"{failed}/{sent}",
                level.saved.label,
            ]
        )
    return out


def to_json(runs: Sequence[SavedRun]) -> list[dict[str, Any]]:
    return [
        {
            "run": level.saved.label,
            "fullname": level.measurement.fullname,
            "checkpoint": level.measurement.checkpoint_id,
            "execution_env": level.measurement.execution_env,
            "server": level.measurement.measurement.engine.build.get("server", {}),
            "serving": (level.measurement.measurement.serving or {}),
            "shape": dict(level.measurement.measurement.load_shape),
            "workload": level.measurement.measurement.workload.to_json(),
            "metrics": {name: dict(summary) for name, summary in level.measurement.metrics.items()},
            "levels": [dict(lv) for lv in level.measurement.measurement.load_levels],
        }
        for level in load_levels(runs)
    ]
