"""How the report writes numbers: about three significant figures, CIs in brackets, percentages."""

from __future__ import annotations

import math


def number(value: float | None) -> str:
    """About three significant figures, never scientific notation for the magnitudes a report holds."""
    if value is None or not math.isfinite(value):
        return "–"
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:#.3g}"  # "#" keeps trailing zeros: 0.810, not 0.81


def with_ci(value: float | None, ci: tuple[float, float] | None, scale: float = 1.0) -> str:
    if value is None:
        return "–"
    text = number(value * scale)
    return f"{text} [{number(ci[0] * scale)}, {number(ci[1] * scale)}]" if ci else text


def percent(value: float, ci: tuple[float, float] | None = None) -> str:
    def one(x: float) -> str:
        return f"{x * 100:.0f}" if abs(x) >= 0.1 else f"{x * 100:.1f}"

    return f"{one(value)} %" + (f" [{one(ci[0])}, {one(ci[1])}]" if ci else "")


def gigabytes(value: float) -> str:
    return number(value / 1e9)
