"""Which evidence a blob is, and the parser for each kind."""

from __future__ import annotations

from collections.abc import Callable

from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.nvidia import NvidiaGpuReport, parse_nvidia_report
from pytest_tee.attestation.sev import SnpReport, looks_like_snp_report, parse_snp_report, unwrap_snp_response
from pytest_tee.attestation.tdx import (
    TdQuote,
    TdReport,
    looks_like_quote,
    looks_like_tdreport,
    parse_quote,
    parse_tdreport,
)

ParsedEvidence = TdReport | TdQuote | SnpReport | NvidiaGpuReport

TDX_TDREPORT = TdReport.kind
TDX_QUOTE = TdQuote.kind
SEV_SNP_REPORT = SnpReport.kind
NVIDIA_GPU_REPORT = NvidiaGpuReport.kind

PARSERS: dict[str, Callable[[bytes], ParsedEvidence]] = {
    TDX_TDREPORT: parse_tdreport,
    TDX_QUOTE: parse_quote,
    SEV_SNP_REPORT: lambda blob: parse_snp_report(unwrap_snp_response(blob)),
    NVIDIA_GPU_REPORT: parse_nvidia_report,
}
# Evidence kinds a remote party can verify with the vendor's collateral (quote verifiers apply to these).
SIGNED_CPU_KINDS = (TDX_QUOTE, SEV_SNP_REPORT)
TDX_KINDS = (TDX_TDREPORT, TDX_QUOTE)


def detect_kind(blob: bytes) -> str:
    """Name the kind of evidence in a file, or raise ``EvidenceFormatError`` saying what was looked for."""
    if looks_like_quote(blob):
        return TDX_QUOTE
    if looks_like_tdreport(blob):
        return TDX_TDREPORT
    if looks_like_snp_report(unwrap_snp_response(blob)):
        return SEV_SNP_REPORT
    head = bytes(blob[:8]).hex() or "(empty)"
    raise EvidenceFormatError(
        f"not recognised as evidence ({len(blob)} bytes, starting {head}): expected a TDREPORT (1024 bytes, first "
        "byte 0x81), a TD quote (version 4 or 5 at offset 0, TEE type 0x81 at offset 4) or an SEV-SNP report "
        "(1184 bytes, version 2–5 at offset 0)"
    )


def parse_evidence(blob: bytes, kind: str | None = None) -> ParsedEvidence:
    """Parse a TDREPORT, a TD quote (v4/v5), an SEV-SNP report or (with ``kind``) an NVIDIA GPU report."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise EvidenceFormatError(f"evidence: expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    kind = kind or detect_kind(blob)
    parser = PARSERS.get(kind)
    if parser is None:
        raise EvidenceFormatError(f"unknown evidence kind {kind!r}: expected one of {', '.join(PARSERS)}")
    return parser(blob)
