"""Which offline signature verification applies to a piece of evidence, and what it needs (time, roots, files).

``verify`` and ``evidence`` both go through ``check_signatures``; a TDREPORT (MAC only checkable on its host) and
an NVIDIA GPU report (checked by NVIDIA's tools) get ``None``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from pytest_tee.attestation.chain import FAIL, SignatureReport
from pytest_tee.attestation.collateral import Collateral
from pytest_tee.attestation.evidence import ParsedEvidence
from pytest_tee.attestation.sev import SnpReport, unwrap_snp_response
from pytest_tee.attestation.snp_verify import SnpCertificates, parse_cert_table, verify_snp_report
from pytest_tee.attestation.tdx import TdQuote
from pytest_tee.attestation.tdx_verify import verify_tdx_quote
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors
from pytest_tee.errors import InputError


@dataclass(frozen=True)
class SignatureContext:
    """What a signature check is judged against. ``anchors`` other than the vendor roots are for tests only."""

    at: dt.datetime | None = None  # None: now
    anchors: TrustAnchors = VENDOR_ROOTS
    collateral: Collateral | None = None
    snp_certs: SnpCertificates | None = None  # from --snp-certs DIR


def check_signatures(
    parsed: ParsedEvidence, raw: bytes, context: SignatureContext, *, auxblob: bytes | None = None
) -> SignatureReport | None:
    """The offline signature checks for a quote or SNP report; None for evidence without any."""
    try:
        return _check_signatures(parsed, raw, context, auxblob)
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.InvalidVersion) as exc:
        # Certificates are attacker-controlled input: whatever the parsers below reject is a failed check.
        report = SignatureReport()
        report.add("signatures", FAIL, f"the signature data cannot be checked: {exc}")
        return report


def _check_signatures(
    parsed: ParsedEvidence, raw: bytes, context: SignatureContext, auxblob: bytes | None
) -> SignatureReport | None:
    if isinstance(parsed, TdQuote):
        return verify_tdx_quote(raw, parsed, at=context.at, anchors=context.anchors, collateral=context.collateral)
    if isinstance(parsed, SnpReport):
        certificates = SnpCertificates()
        if auxblob:
            certificates.merge(parse_cert_table(auxblob))
        if context.snp_certs is not None:
            certificates.merge(context.snp_certs)
        return verify_snp_report(
            unwrap_snp_response(raw),
            parsed,
            certificates=certificates,
            at=context.at,
            anchors=context.anchors,
            collateral=context.collateral,
        )
    return None


def parse_at(text: str) -> dt.datetime:
    """``--at``: an ISO 8601 date or date-time; UTC when no offset is given."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"--at: {text!r} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
