"""The ``pytest-tee`` command: each subcommand lives with the part that owns its concern.

Exit codes: 0 all good; 1 a regression or a failed verification; 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pytest_tee.errors import InputError

# name → (module, help). Each module provides add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "env": ("pytest_tee.environment.command", "print the detected environment"),
    "compare": ("pytest_tee.baseline.compare_command", "the regression gate over two saved runs"),
    "ab": ("pytest_tee.baseline.ab", "same-runner A/B: base revision and head interleaved, then compared"),
    "report": ("pytest_tee.report.command", "cross-environment comparison table and plots"),
    "verify": ("pytest_tee.attestation.verify_command", "check that attestation evidence binds these results"),
    "evidence": ("pytest_tee.attestation.evidence_command", "parse a TDREPORT, TD quote or SEV-SNP report file"),
    "cache": ("pytest_tee.checkpoints.cache_command", "list or clear the cached synthetic GGUF weights"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-tee",
        description="LLM tokens/s benchmarks in trust domains: environment, gate, reports and attestation.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(sub)
        sub.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args))
    except InputError as exc:
        print(f"pytest-tee {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-tee: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
