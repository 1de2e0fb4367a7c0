"""How pytest-tee writes text: numbers (about three significant figures, CIs in brackets, percentages) and tables
(aligned plain text for the terminal, GitHub-flavoured markdown). Every table and number in the terminal, the
summaries and the reports goes through here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


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


def significant(value: float, digits: int = 3) -> str:
    """``digits`` significant digits without exponent noise: 0.0123, 4.12, 412, 41200."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


# ---------------------------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    groups: list[tuple[str, int]] = field(default_factory=list)  # column groups above the headers: (label, span)
    folded_groups: frozenset[str] = frozenset()  # groups whose label prefixes each header where there are no groups
    numeric_from: int = 0  # columns from this index on are right-aligned …
    text_columns: frozenset[int] = frozenset()  # … except these

    def is_numeric(self, index: int) -> bool:
        return index >= self.numeric_from and index not in self.text_columns

    @classmethod
    def aligned(cls, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[str]]) -> Table:
        """From ``(header, "<" or ">")`` columns: "<" left-aligned text, ">" right-aligned numbers."""
        return cls(
            headers=[name for name, _ in columns],
            rows=[list(row) for row in rows],
            text_columns=frozenset(index for index, (_, align) in enumerate(columns) if align == "<"),
        )


def md_escape(text: str) -> str:
    """A table cell or list item for GitHub markdown: no column breaks, no HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def text_table(table: Table) -> str:
    widths = [len(header) for header in table.headers]
    for row in table.rows:
        widths = [max(width, len(value)) for width, value in zip(widths, row, strict=True)]

    def line(values: Sequence[str]) -> str:
        cells = [
            value.rjust(width) if table.is_numeric(index) else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [line(table.headers), "  ".join("-" * width for width in widths)]
    out += [line(row) for row in table.rows]
    return "\n".join(out)


def markdown_table(table: Table) -> str:
    headers = table.headers
    if table.groups and any(label for label, _ in table.groups):
        # Markdown has no column groups: fold the group into each header ("cpu decode tok/s").
        headers = []
        position = 0
        for label, span in table.groups:
            prefix = label if label in table.folded_groups else ""
            headers += [f"{prefix} {h}".strip() for h in table.headers[position : position + span]]
            position += span
    align = ["---:" if table.is_numeric(index) else ":---" for index in range(len(headers))]
    out = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(md_escape(value) for value in row) + " |" for row in table.rows]
    return "\n".join(out)
