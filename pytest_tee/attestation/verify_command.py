"""``pytest-tee verify RESULTS.json``: does the attestation evidence bind these results, and is it genuine?

Exit 0 when every check holds, 1 when one fails, 2 on bad input (see ``pytest_tee.cli``). Signatures are always
checked against the vendor roots pinned in ``trust_roots.py``; ``run``'s ``anchors`` keyword is for tests only
and is not reachable from the command line.
"""

from __future__ import annotations

import argparse
import json

from pytest_tee.attestation.collateral import load_collateral
from pytest_tee.attestation.output import print_quietly
from pytest_tee.attestation.signatures import SignatureContext, parse_at
from pytest_tee.attestation.snp_verify import load_cert_dir
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors
from pytest_tee.attestation.verify import (
    DEFAULT_VERIFIER_TIMEOUT_S,
    Expectations,
    load_results,
    parse_measurement,
    parse_rtmr_expectation,
    summary_line,
    verify_document,
)
from pytest_tee.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS.json", help="a saved run or a --benchmark-json file")
    parser.add_argument("--expect-mrtd", metavar="HEX", help="the TD's expected MRTD (96 hex digits)")
    parser.add_argument(
        "--expect-rtmr",
        metavar="N=HEX",
        action="append",
        default=[],
        help="an expected runtime measurement register, N in 0..3 (repeatable)",
    )
    parser.add_argument(
        "--expect-measurement", metavar="HEX", help="the SEV-SNP guest's expected launch measurement (96 hex digits)"
    )
    parser.add_argument(
        "--allow-debug", action="store_true", help="accept evidence from a DEBUG TD / debug-enabled SNP guest"
    )
    add_signature_arguments(parser)
    parser.add_argument(
        "--quote-verifier",
        metavar="CMD",
        help="an extra, external check: run CMD EVIDENCE_FILE on each quote/report (exit 0 = valid); "
        "see docs/attestation.md",
    )
    parser.add_argument(
        "--quote-verifier-timeout",
        type=float,
        default=DEFAULT_VERIFIER_TIMEOUT_S,
        metavar="S",
        help=f"seconds to wait for the quote verifier (default {DEFAULT_VERIFIER_TIMEOUT_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def add_signature_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="WHEN",
        help="judge certificate and collateral validity at this ISO 8601 date/time (default: now)",
    )
    parser.add_argument(
        "--collateral",
        metavar="DIR",
        help="Intel TCB info, QE identity and CRLs / AMD CRLs as fetched from the vendors: adds TCB status and "
        "revocation (see docs/attestation.md)",
    )
    parser.add_argument(
        "--snp-certs", metavar="DIR", help="VCEK/VLEK (and ASK/ARK) certificate files for SEV-SNP reports"
    )


def signature_context(args: argparse.Namespace, anchors: TrustAnchors = VENDOR_ROOTS) -> SignatureContext:
    return SignatureContext(
        at=parse_at(args.at) if args.at else None,
        anchors=anchors,
        collateral=load_collateral(args.collateral) if args.collateral else None,
        snp_certs=load_cert_dir(args.snp_certs) if args.snp_certs else None,
    )


def expectations_from_args(args: argparse.Namespace) -> Expectations:
    rtmrs = dict(parse_rtmr_expectation(text) for text in args.expect_rtmr)
    return Expectations(
        mrtd=parse_measurement(args.expect_mrtd, "--expect-mrtd") if args.expect_mrtd else None,
        rtmrs=rtmrs,
        measurement=(
            parse_measurement(args.expect_measurement, "--expect-measurement") if args.expect_measurement else None
        ),
        allow_debug=args.allow_debug,
    )


def run(args: argparse.Namespace, *, anchors: TrustAnchors = VENDOR_ROOTS) -> int:
    if args.quote_verifier_timeout <= 0:
        raise InputError(f"--quote-verifier-timeout: {args.quote_verifier_timeout:g} is not a positive number")
    expectations = expectations_from_args(args)
    doc = load_results(args.results)
    checks = verify_document(
        doc,
        expectations,
        quote_verifier=args.quote_verifier,
        verifier_timeout=args.quote_verifier_timeout,
        origin=args.results,
        signatures=signature_context(args, anchors),
    )
    failed = any(check.failed for check in checks)
    if args.json:
        text = json.dumps(
            {"results": args.results, "ok": not failed, "checks": [check.to_dict() for check in checks]}, indent=2
        )
    else:
        text = "\n".join([*(check.line() for check in checks), summary_line(checks)])
    print_quietly(text)
    return 1 if failed else 0
