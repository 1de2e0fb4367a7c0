"""``pytest-tee report``: the cross-environment comparison table and plots over saved runs from any machines.

Only light modules are imported at module level: ``pytest-tee --help`` builds every subcommand's parser.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pytest_tee.errors import InputError
from pytest_tee.report.data import RATIO_METRICS

if TYPE_CHECKING:
    from pytest_tee.report.data import Inputs
    from pytest_tee.report.model import Report

FORMATS = ("text", "md", "json", "html")
SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html", ".txt": "text"}
DEFAULT_PATH = ".benchmarks"
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"pytest-benchmark storage folders or saved run files, from any machines (default {DEFAULT_PATH})",
    )
    parser.add_argument("--format", choices=FORMATS, help="output format (default: from --output's suffix, else text)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the report here instead of stdout")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png|FILE.svg",
        help="write the comparison figure here (and FILE-history.png with --history)",
    )
    parser.add_argument(
        "--history",
        metavar="BENCHMARK",
        help="add one benchmark's history across the runs (its full name, or a unique part of it)",
    )
    parser.add_argument(
        "--verdicts",
        action="append",
        default=[],
        metavar="[RUN=]FILE",
        help="verdicts written by --tee-verdicts to mark in the history (RUN: the run they judge; default: the run "
        "whose median matches the verdict's head, else the newest); without this, each run is gated against the "
        "previous one",
    )
    parser.add_argument(
        "--history-threshold",
        type=_percent,
        default=5.0,
        metavar="PCT",
        help="threshold of the gate's rule for history verdicts without --verdicts (default 5%%)",
    )
    parser.add_argument(
        "--bandwidth",
        action="append",
        default=[],
        metavar="[ENV=]GBPS",
        help="memory read bandwidth in GB/s for the roofline, overriding what runs recorded; a bare value applies "
        "to CPU environments, ENV=GBPS to one environment (e.g. cuda=3350)",
    )
    parser.add_argument(
        "--metric",
        choices=RATIO_METRICS,
        default="decode_tps",
        help="the rate the ratios and the history compare (default decode_tps)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _percent(text: str) -> float:
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*%?\s*", text)
    if not match or not 0 < float(match.group(1)) < 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage between 0 and 100, e.g. 5 or 2.5%")
    return float(match.group(1))


def parse_bandwidth(values: list[str]) -> tuple[float | None, dict[str, float]]:
    default: float | None = None
    by_env: dict[str, float] = {}
    for raw in values:
        env, sep, number = raw.rpartition("=")
        try:
            gbps = float(number)
        except ValueError:
            gbps = -1.0
        if gbps <= 0 or (sep and not env.strip()):
            raise InputError(
                f"--bandwidth {raw!r}: expected GBPS or ENV=GBPS with a positive number, e.g. 22 or cuda=3350"
            )
        if sep:
            by_env[env.strip()] = gbps
        else:
            default = gbps
    return default, by_env


def parse_verdict_args(values: list[str]) -> list[tuple[str | None, Path]]:
    pairs: list[tuple[str | None, Path]] = []
    for raw in values:
        run, sep, file = raw.partition("=")
        if sep and run and not Path(raw).exists():
            pairs.append((run, Path(file)))
        else:
            pairs.append((None, Path(raw)))
    return pairs


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output is not None:
        return SUFFIX_FORMATS.get(args.output.suffix.lower(), "text")
    return "text"


def run(args: argparse.Namespace) -> int:
    from pytest_tee.files import write_atomic
    from pytest_tee.report import plots
    from pytest_tee.report.data import load_inputs
    from pytest_tee.report.history import build_history
    from pytest_tee.report.model import Bandwidth, build_report

    paths = list(args.paths) or [DEFAULT_PATH]
    if not args.paths and not Path(DEFAULT_PATH).is_dir():
        raise InputError(
            f"no {DEFAULT_PATH} folder here; give the pytest-benchmark storage folders or saved run files to report on"
        )
    if args.output is not None and args.output.is_dir():
        raise InputError(f"--output {args.output}: is a directory; give a file name")
    if args.plot is not None:
        plots.check_plot_path(args.plot)
        plots.require_matplotlib()
    if args.verdicts and not args.history:
        raise InputError("--verdicts marks runs in a history: give --history BENCHMARK too")
    default_gbps, by_env = parse_bandwidth(args.bandwidth)
    fmt = output_format(args)

    inputs = load_inputs(paths)
    _refuse_overwriting_inputs(inputs, [args.output, args.plot])
    report = build_report(inputs, metric=args.metric, bandwidth=Bandwidth(default_gbps, by_env), seed=args.seed)
    if args.history:
        report.history = build_history(
            inputs.runs,
            args.history,
            metric=args.metric,
            verdict_files=parse_verdict_args(args.verdicts),
            threshold_pct=args.history_threshold,
        )

    text = _render(report, fmt)
    if args.output is not None:
        _write("--output", args.output, lambda: write_atomic(args.output, text))
        print(f"pytest-tee report: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()  # before the "wrote" lines on stderr
    if args.plot is not None:
        for path in _write("--plot", args.plot, lambda: plots.write_plots(report, args.plot)):
            print(f"pytest-tee report: wrote {path}", file=sys.stderr)
    return 0


def _render(report: Report, fmt: str) -> str:
    from pytest_tee.report import report_output

    if fmt == "json":
        return report_output.to_json(report)
    if fmt == "md":
        return report_output.to_markdown(report)
    if fmt == "html":
        return report_output.to_html(report, *_html_images(report))
    return report_output.to_text(report)


def _write(option: str, path: Path, write: Callable[[], T]) -> T:
    try:
        return write()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot be written ({exc.strerror or exc})") from None


def _refuse_overwriting_inputs(inputs: Inputs, outputs: list[Path | None]) -> None:
    """A report never replaces a saved run, whatever --output or --plot says."""
    stored = {saved.run.path.resolve() for saved in inputs.runs if saved.run.path is not None}
    for output in outputs:
        if output is not None and output.resolve() in stored:
            raise InputError(f"{output}: is one of the saved runs being reported on; write the report elsewhere")


def _html_images(report: Report) -> tuple[list[tuple[str, bytes, str]], str | None]:
    """Plots are always embedded in the HTML page when matplotlib is installed; a note says so when it is not."""
    from pytest_tee.report import plots

    try:
        plots.require_matplotlib()
    except InputError:
        return [], "plots left out: matplotlib is not installed (pip install 'pytest-tee[report]')"
    return plots.figures_for_html(report), None
