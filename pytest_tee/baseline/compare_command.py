"""``pytest-tee compare BASE HEAD``: the regression gate over two saved runs, with the plugin's verdicts.

Exit 1 on a regression (or an inconclusive verdict with ``--fail-inconclusive``), 0 otherwise, 2 on bad input:
a missing or corrupt file, or runs that are not comparable without ``--allow-env-mismatch``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_RULES = "decode_tps:5%"
FORMATS = ("text", "md", "json")


def fail_drop_rules(text: str) -> tuple[tuple[str, float], ...]:
    """argparse type for ``--fail-drop``: the plugin's own parser, so both accept the same rules."""
    from pytest_tee.settings import SettingError, parse_fail_drop

    try:
        return parse_fail_drop(text)
    except SettingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE", help="the baseline run (a saved pytest-benchmark JSON file)")
    parser.add_argument("head", metavar="HEAD", help="the run to judge (a saved pytest-benchmark JSON file)")
    add_gate_arguments(parser)


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate flags shared by ``compare`` and ``ab``."""
    parser.add_argument(
        "--fail-drop",
        metavar="METRIC:PCT[,…]",
        type=fail_drop_rules,
        default=None,
        help=f"regression limits, e.g. decode_tps:5%%,ttft_s:10%% (default {DEFAULT_RULES.replace('%', '%%')})",
    )
    parser.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="compare even when the environment fingerprints or benchmark setups differ (they are listed)",
    )
    parser.add_argument("--fail-inconclusive", action="store_true", help="exit 1 on an inconclusive verdict too")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")


def rules_of(args: argparse.Namespace) -> tuple[tuple[str, float], ...]:
    return args.fail_drop or fail_drop_rules(DEFAULT_RULES)


def run(args: argparse.Namespace) -> int:
    from pytest_tee.baseline.compare import compare_runs
    from pytest_tee.results import load_run

    base = load_run(args.base)
    head = load_run(args.head)
    comparison = compare_runs(
        base, head, rules_of(args), allow_env_mismatch=args.allow_env_mismatch, refuse_flag="--allow-env-mismatch"
    )
    return emit(comparison, args)


def emit(comparison: Any, args: argparse.Namespace) -> int:
    """Print the comparison in the requested format; the exit code the gate gives it."""
    from pytest_tee.baseline.render import render_json, render_markdown, render_text

    if args.format == "json":
        sys.stdout.write(render_json(comparison, fail_inconclusive=args.fail_inconclusive))
    elif args.format == "md":
        sys.stdout.write(render_markdown(comparison))
    else:
        sys.stdout.write(render_text(comparison))
    return comparison.exit_code(args.fail_inconclusive)
