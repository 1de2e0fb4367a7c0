"""The report's figures (matplotlib, Agg canvas, imported only here and only when a plot is drawn).

``--plot FILE`` writes one multi-panel comparison figure to FILE — decode tok/s per checkpoint and environment,
GPU/CPU ratios against model size, TEE/bare ratios against model size, and the fraction of the memory-bandwidth
limit when known — and, with ``--history``, the history figure to FILE with ``-history`` before the suffix.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_tee.errors import InputError
from pytest_tee.files import write_atomic
from pytest_tee.report.history import History
from pytest_tee.report.model import PAPER_MEAN_GPU_CPU, RatioKind, Report, Row
from pytest_tee.text import number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_SUFFIXES = {".png": "image/png", ".svg": "image/svg+xml"}
COLORS = {
    "cpu": "#4c72b0",
    "cuda": "#55a868",
    "tdx": "#c44e52",
    "tdx-cuda": "#8172b2",
    "sev-snp": "#ccb974",
    "sev-snp-cuda": "#64b5cd",
}
FALLBACK_COLORS = ("#937860", "#da8bc3", "#8c8c8c", "#dd8452")
MARKERS = ("o", "s", "^", "D")  # one per workload in the ratio panels
LINESTYLES = ("-", "-.", ":", (0, (5, 1)))
OUTCOME_STYLE = {  # marker, colour, size
    "regressed": ("X", "#d62728", 120),
    "improved": ("^", "#2ca02c", 80),
    "inconclusive": ("o", "#ff7f0e", 45),
}


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(
            "plots need matplotlib, which is not installed; install it (pip install 'pytest-tee[report]') "
            "or leave out --plot"
        ) from None


def color(env: str, environments: Sequence[str]) -> str:
    if env in COLORS:
        return COLORS[env]
    return FALLBACK_COLORS[environments.index(env) % len(FALLBACK_COLORS)] if env in environments else "#333333"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_bytes(figure: Figure, suffix: str = ".png") -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=suffix.lstrip("."), dpi=110)
    return buffer.getvalue()


def save(figure: Figure, path: Path) -> Path:
    return write_atomic(path, figure_bytes(figure, path.suffix.lower()))


def history_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-history{path.suffix}")


def check_plot_path(path: Path) -> None:
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"--plot {path}: the file name must end in .png or .svg")
    if path.is_dir():
        raise InputError(f"--plot {path}: is a directory; give a file name ending in .png or .svg")


def write_plots(report: Report, path: Path) -> list[Path]:
    """The comparison figure at ``path`` and, when the report has a history, the history figure beside it."""
    check_plot_path(path)
    require_matplotlib()
    written = [save(comparison_figure(report), path)]
    if report.history is not None:
        written.append(save(history_figure(report.history), history_path(path)))
    return written


def figures_for_html(report: Report) -> list[tuple[str, bytes, str]]:
    images = [("Comparison across environments", figure_bytes(comparison_figure(report)), "image/png")]
    if report.history is not None:
        images.append(
            (f"History of {report.history.benchmark}", figure_bytes(history_figure(report.history)), "image/png")
        )
    return images


# ---------------------------------------------------------------------------------------------------------------
# The comparison figure


def comparison_figure(report: Report) -> Figure:
    panels: list[Callable[[Axes], None]] = [lambda ax: _decode_panel(ax, report)]
    gpu_kinds = [kind for kind in report.ratio_kinds if kind.kind == "gpu-cpu"]
    tee_kinds = [kind for kind in report.ratio_kinds if kind.is_tee]
    if gpu_kinds:
        panels.append(lambda ax: _ratio_panel(ax, report, gpu_kinds, gpu=True))
    if tee_kinds:
        panels.append(lambda ax: _ratio_panel(ax, report, tee_kinds, gpu=False))
    if report.has_roofline:
        panels.append(lambda ax: _roofline_panel(ax, report))
    columns = 1 if len(panels) == 1 else 2
    lines = math.ceil(len(panels) / columns)
    panel_width = max(7.0, 1.1 * len(report.rows))  # room for each row's group of bars and its label
    figure = _new_figure(panel_width * columns, 4.8 * lines)
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    for ax, draw in zip(axes, panels, strict=False):
        draw(ax)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    figure.suptitle("pytest-tee: tokens/s across execution environments", fontsize=13)
    return figure


def _row_labels(rows: Sequence[Row]) -> list[str]:
    """Checkpoint (without the prefix all rows share) and size; the workload too when there are several."""
    prefix = _shared_prefix([row.checkpoint for row in rows])
    several_workloads = len({row.workload for row in rows}) > 1
    labels = []
    for row in rows:
        label = row.checkpoint.removeprefix(prefix) + (f"\n{row.size_label}" if row.parameters else "")
        labels.append(label + (f"\n{row.workload.label}" if several_workloads else ""))
    return labels


def _shared_prefix(names: Sequence[str]) -> str:
    """The leading dash-separated words every name shares (``r1-distill-``), when the names are not all one."""
    if len(set(names)) < 2:
        return ""
    shared: list[str] = []
    for words in zip(*(name.split("-") for name in names), strict=False):
        if len(set(words)) > 1:
            break
        shared.append(words[0])
    return "".join(word + "-" for word in shared)


def _row_axis(ax: Axes, rows: Sequence[Row]) -> None:
    crowded = len(rows) > 4
    ax.set_xticks(range(len(rows)), _row_labels(rows), fontsize=8 if crowded else 9)
    prefix = _shared_prefix([row.checkpoint for row in rows])
    parts = [f"checkpoint ({prefix}…)" if prefix else "checkpoint", "parameters"]
    if len({row.workload for row in rows}) > 1:
        parts.append("prompt/new/batch")
    ax.set_xlabel(", ".join(parts))


def _decode_panel(ax: Axes, report: Report) -> None:
    rows = report.rows
    envs = report.environments
    width = 0.8 / max(len(envs), 1)
    for index, env in enumerate(envs):
        xs, medians, lows, highs = [], [], [], []
        for position, row in enumerate(rows):
            cell = row.cells.get(env)
            found = cell.estimates.get("decode_tps") if cell else None
            if found is None:
                continue
            xs.append(position + (index - (len(envs) - 1) / 2) * width)
            medians.append(found.median)
            low, high = found.ci95 or (found.median, found.median)
            lows.append(found.median - low)
            highs.append(high - found.median)
        if not xs:
            continue
        color_ = color(env, envs)
        ax.bar(xs, medians, width=width * 0.92, color=color_, label=env, yerr=[lows, highs], capsize=3,
               error_kw={"elinewidth": 1, "ecolor": "#222"})  # fmt: skip
        for x, median, above in zip(xs, medians, highs, strict=True):
            ax.annotate(number(median), (x, median + above), textcoords="offset points", xytext=(0, 2),
                        ha="center", fontsize=7)  # fmt: skip
    _row_axis(ax, rows)
    ax.set_yscale("log")
    # Plain numbers on the log axis ("5" rather than "5 × 10⁰"): the values themselves are what readers compare.
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _position: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel("decode tok/s (median, 95 % CI; log scale)")
    ax.set_title("Decode throughput per checkpoint and environment")
    ax.legend(title="environment", fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)


def _ratio_panel(ax: Axes, report: Report, kinds: Sequence[RatioKind], *, gpu: bool) -> None:
    several_workloads = len(report.workloads) > 1
    sizes: dict[int, str] = {}
    for kind in kinds:
        for number_, workload in enumerate(report.workloads):
            points = [
                (row.parameters, row.ratios[kind.name])
                for row in report.rows
                if row.workload == workload and kind.name in row.ratios and row.parameters
            ]
            if not points:
                continue
            xs = [parameters for parameters, _ in points]
            ys = [ratio.value for _, ratio in points]
            errors = [
                [ratio.value - (ratio.ci95 or (ratio.value, ratio.value))[0] for _, ratio in points],
                [(ratio.ci95 or (ratio.value, ratio.value))[1] - ratio.value for _, ratio in points],
            ]
            label = kind.label + (f" {workload.label}" if several_workloads else "")
            color_ = color(kind.numerator, report.environments)
            ax.errorbar(xs, ys, yerr=errors, marker=MARKERS[number_ % len(MARKERS)], capsize=4, color=color_,
                        label=label, linestyle=LINESTYLES[number_ % len(LINESTYLES)])  # fmt: skip
            for x, y, (_, ratio) in zip(xs, ys, points, strict=True):
                ax.annotate(number(y) + (" †" if ratio.differences else ""), (x, y), textcoords="offset points",
                            xytext=(6, 4), fontsize=8)  # fmt: skip
            for row in report.rows:
                if row.parameters and row.size_label:
                    sizes[row.parameters] = row.size_label
            mean = next((m for m in report.means if m.kind == kind and m.workload == workload), None)
            if gpu and mean is not None:
                ax.axhline(
                    mean.value, color=color_, linestyle="--", linewidth=1, label=f"mean {label} {number(mean.value)}"
                )
    if gpu:
        ax.axhline(PAPER_MEAN_GPU_CPU, color="#777", linestyle=":", linewidth=1.2, label="paper: mean ≈ 12")
        ax.set_title(f"GPU/CPU ratio of median {report.metric} against model size")
        ax.set_ylabel("GPU / CPU")
        ax.set_ylim(0, max(ax.get_ylim()[1], PAPER_MEAN_GPU_CPU) * 1.1)
    else:
        ax.axhline(1.0, color="#777", linestyle=":", linewidth=1.2, label="1 = no TEE cost")
        ax.set_title(f"TEE / bare ratio of median {report.metric} against model size")
        ax.set_ylabel("TEE / bare  (below 1: the TEE costs)")
    _size_axis(ax, sizes)
    if any(row.ratios[kind.name].differences for kind in kinds for row in report.rows if kind.name in row.ratios):
        ax.set_xlabel(ax.get_xlabel() + "\n† the two sides differ in more than what the ratio compares: see the notes")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _size_axis(ax: Axes, sizes: dict[int, str]) -> None:
    ax.set_xscale("log")
    if sizes:
        ticks = sorted(sizes)
        ax.set_xticks(ticks, [sizes[t] for t in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(ticks) / 1.6, max(ticks) * 1.6)
    ax.set_xlabel("parameters (log scale)")


def _roofline_panel(ax: Axes, report: Report) -> None:
    rows = report.rows
    envs = [env for env in report.environments if any(row.cells.get(env) and row.cells[env].roofline for row in rows)]
    width = 0.8 / max(len(envs), 1)
    for index, env in enumerate(envs):
        xs, values, lows, highs = [], [], [], []
        for position, row in enumerate(rows):
            cell = row.cells.get(env)
            if cell is None or cell.roofline is None:
                continue
            roof = cell.roofline
            low, high = roof.fraction_ci95 or (roof.fraction, roof.fraction)
            xs.append(position + (index - (len(envs) - 1) / 2) * width)
            values.append(roof.fraction * 100)
            lows.append((roof.fraction - low) * 100)
            highs.append((high - roof.fraction) * 100)
        ax.bar(xs, values, width=width * 0.92, color=color(env, report.environments), label=env,
               yerr=[lows, highs], capsize=3)  # fmt: skip
        for x, value, above in zip(xs, values, highs, strict=True):
            ax.annotate(f"{value:.0f} %", (x, value + above), textcoords="offset points", xytext=(0, 2),
                        ha="center", fontsize=7)  # fmt: skip
    ax.axhline(100, color="#777", linestyle=":", linewidth=1.2, label="bandwidth limit")
    _row_axis(ax, rows)
    ax.set_ylim(0, max(110, *(ax.get_ylim()[1:])))
    ax.set_ylabel("% of memory-bandwidth limit")
    ax.set_title("Decode: bytes moved per second ÷ measured read bandwidth")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------------------------------------------------------
# The history figure


def history_figure(history: History) -> Figure:
    points = history.points
    figure = _new_figure(max(7.0, 0.7 * len(points) + 3), 4.8)
    ax = figure.subplots()
    scale = 1000.0 if history.metric == "ttft_s" else 1.0
    xs = list(range(len(points)))
    medians = [point.estimate.median * scale for point in points]
    errors: list[list[float]] = [[], []]
    for point, median in zip(points, medians, strict=True):
        low, high = point.estimate.ci95 or (point.estimate.median, point.estimate.median)
        errors[0].append(median - low * scale)
        errors[1].append(high * scale - median)
    ax.errorbar(xs, medians, yerr=errors, marker="o", color="#4c72b0", capsize=4, label=f"median {history.metric}")
    for outcome, (marker, color_, size) in OUTCOME_STYLE.items():
        chosen = [i for i, point in enumerate(points) if point.outcome == outcome]
        if chosen:
            ax.scatter([xs[i] for i in chosen], [medians[i] for i in chosen], marker=marker, color=color_, s=size,
                       zorder=3, label=outcome)  # fmt: skip
    for i, point in enumerate(points):
        if point.environment_changed:
            ax.axvline(i - 0.5, color="#999", linestyle="--", linewidth=1)
            ax.annotate("environment changed", (i - 0.5, 1), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=7, color="#666")  # fmt: skip
    labels = [f"{point.saved.label}\n{point.saved.when}" for point in points]
    ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
    unit = "ms" if scale != 1.0 else _unit(history)
    ax.set_ylabel(f"{history.metric} ({unit}), median and 95 % CI")
    ax.set_ylim(bottom=0)
    ax.set_title(_short(history.benchmark), fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def _unit(history: History) -> str:
    from pytest_tee.measure.metrics import METRICS

    return METRICS[history.metric].unit


def _short(name: str, limit: int = 90) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]
