"""``pytest-tee compare BASE HEAD [--history DIR]``: the regression gate over two saved runs, with the plugin's
verdicts. ``--history`` names a storage folder whose runs of the baseline's environment measure the between-session
noise (as the plugin's own storage does); without it, or with fewer than 3 such runs, the fallback rule judges.

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
    parser.add_argument(
        "--history",
        metavar="DIR",
        default=None,
        help="a folder of stored runs (e.g. .benchmarks): those with the baseline's fingerprint measure the "
        "between-session noise (3 or more needed; the newest 10 are used)",
    )
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
    from pytest_tee.saved_runs import load_run

    base = load_run(args.base)
    head = load_run(args.head)
    comparison = compare_runs(
        base,
        head,
        rules_of(args),
        allow_env_mismatch=args.allow_env_mismatch,
        refuse_flag="--allow-env-mismatch",
        history=_history(args.history, base),
    )
    return emit(comparison, args)


def _history(folder: str | None, base: Any) -> list[Any]:
    from pathlib import Path

    from pytest_tee.baseline.select import history_runs
    from pytest_tee.errors import InputError

    if folder is None:
        return []
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(
            f"--history {folder!r}: not a folder (give the storage folder of saved runs, e.g. .benchmarks)"
        )
    return history_runs(path, base.fingerprint, include=base)


def emit(comparison: Any, args: argparse.Namespace) -> int:
    """Print the comparison in the requested format; the exit code the gate gives it."""
    from pytest_tee.baseline.gate_output import render_json, render_markdown, render_text

    if args.format == "json":
        sys.stdout.write(render_json(comparison, fail_inconclusive=args.fail_inconclusive))
    elif args.format == "md":
        sys.stdout.write(render_markdown(comparison))
    else:
        sys.stdout.write(render_text(comparison))
    return comparison.exit_code(args.fail_inconclusive)
