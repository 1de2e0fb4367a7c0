"""Offline verification of a TD quote (v4/v5) up to the pinned Intel SGX Root CA.

What is checked, in order (each one a ``Step``), following Intel's DCAP Quote Verification Library:

1. ``certification data``: type 6 (QE report certification data) wrapping type 5 (the PCK chain as PEM);
2. ``quote signature``: ECDSA P-256 over header ‖ body (v5: ‖ body descriptor) under the quote's attestation key;
3. ``QE report binding``: SHA-256(attestation key ‖ QE authentication data) = QE REPORTDATA[0:32], rest zero;
4. ``QE report signature``: ECDSA P-256 over the 384-byte QE report under the PCK certificate's key;
5. ``PCK chain``, ``root pin``, ``validity``: PCK → PCK Platform/Processor CA → Intel SGX Root CA;
6. ``TCB status``: only with collateral (see ``collateral.py``), otherwise a note saying so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_tee.attestation import der
from pytest_tee.attestation.chain import (
    FAIL,
    NOTE,
    PASS,
    SignatureReport,
    check_chain,
    common_name,
    ecdsa_raw_verify,
    public_key_of,
)
from pytest_tee.attestation.tdx import TdQuote, parse_quote
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors

if TYPE_CHECKING:
    from pytest_tee.attestation.collateral import Collateral

CERT_TYPE_PCK_CHAIN = 5
CERT_TYPE_QE_REPORT = 6
CERT_TYPE_NAMES = {
    1: "PPID in plain text",
    2: "PPID RSA-2048 encrypted",
    3: "PPID RSA-3072 encrypted",
    4: "PCK certificate",
    5: "PCK certificate chain",
    6: "QE report certification data",
    7: "Platform manifest",
}
QE_REPORT_SIZE = 384
QE_SIGNATURE_SIZE = 64
SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"
NO_COLLATERAL = "signature chain valid; TCB status not checked (no collateral)"


class CertificationDataError(ValueError):
    """The quote's certification data is not the type-6/type-5 structure a verifier needs."""


@dataclass(frozen=True)
class QeReport:
    """The Quoting Enclave's SGX REPORT body (384 bytes)."""

    raw: bytes

    @property
    def cpusvn(self) -> bytes:
        return self.raw[0:16]

    @property
    def miscselect(self) -> int:
        return int.from_bytes(self.raw[16:20], "little")

    @property
    def attributes(self) -> bytes:
        return self.raw[48:64]

    @property
    def mrenclave(self) -> bytes:
        return self.raw[64:96]

    @property
    def mrsigner(self) -> bytes:
        return self.raw[128:160]

    @property
    def isvprodid(self) -> int:
        return int.from_bytes(self.raw[256:258], "little")

    @property
    def isvsvn(self) -> int:
        return int.from_bytes(self.raw[258:260], "little")

    @property
    def report_data(self) -> bytes:
        return self.raw[320:384]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mrenclave": self.mrenclave.hex(),
            "mrsigner": self.mrsigner.hex(),
            "isvprodid": self.isvprodid,
            "isvsvn": self.isvsvn,
            "miscselect": f"0x{self.miscselect:08x}",
            "attributes": self.attributes.hex(),
        }


@dataclass(frozen=True)
class QeCertificationData:
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes


def parse_certification_data(quote: TdQuote) -> QeCertificationData:
    """Split type-6 certification data; errors name the field, its offset and what was found."""
    kind = quote.certification_data_type
    if kind != CERT_TYPE_QE_REPORT:
        name = CERT_TYPE_NAMES.get(kind, "unknown")
        raise CertificationDataError(
            f"certification data type is {kind} ({name}), expected 6 (QE report certification data carrying the "
            "PCK certificate chain): this quote cannot be verified offline"
        )
    data = quote.certification_data
    fixed = QE_REPORT_SIZE + QE_SIGNATURE_SIZE + 2
    if len(data) < fixed:
        raise CertificationDataError(
            f"certification data is {len(data)} bytes, too short for the QE report (384), its signature (64) and "
            "the authentication data size (2): truncated"
        )
    auth_size = int.from_bytes(data[fixed - 2 : fixed], "little")
    inner = fixed + auth_size
    if len(data) < inner + 6:
        raise CertificationDataError(
            f"certification data is {len(data)} bytes: QE authentication data ({auth_size} bytes at offset {fixed}) "
            "leaves no room for the inner certification data header: truncated"
        )
    inner_type = int.from_bytes(data[inner : inner + 2], "little")
    inner_size = int.from_bytes(data[inner + 2 : inner + 6], "little")
    if inner_type != CERT_TYPE_PCK_CHAIN:
        name = CERT_TYPE_NAMES.get(inner_type, "unknown")
        raise CertificationDataError(
            f"inner certification data type is {inner_type} ({name}), expected 5 (PCK certificate chain)"
        )
    if len(data) < inner + 6 + inner_size:
        raise CertificationDataError(
            f"the PCK certificate chain should be {inner_size} bytes but only {len(data) - inner - 6} are present: "
            "truncated"
        )
    return QeCertificationData(
        qe_report=QeReport(data[:QE_REPORT_SIZE]),
        qe_report_signature=data[QE_REPORT_SIZE : QE_REPORT_SIZE + QE_SIGNATURE_SIZE],
        qe_auth_data=data[fixed:inner],
        pck_chain_pem=data[inner + 6 : inner + 6 + inner_size],
    )


def load_pem_chain(pem: bytes, what: str) -> list[x509.Certificate]:
    """Certificates from PEM text (a trailing NUL, as quotes carry, is ignored); ``ValueError`` naming ``what``."""
    text = pem.rstrip(b"\x00").strip()
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{what} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(text)
    except (ValueError, x509.InvalidVersion) as exc:
        raise ValueError(f"{what} does not parse as PEM certificates: {exc}") from None


def order_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf first, each certificate followed by its issuer, as far as the names link up."""
    by_subject = {cert.subject: cert for cert in certs}
    issuers = {cert.issuer for cert in certs if cert.issuer != cert.subject}
    leaves = [cert for cert in certs if cert.subject not in issuers]
    ordered = [leaves[0] if leaves else certs[0]]
    while ordered[-1].issuer != ordered[-1].subject and ordered[-1].issuer in by_subject:
        nxt = by_subject[ordered[-1].issuer]
        if nxt in ordered:
            break
        ordered.append(nxt)
    return ordered


# -- the PCK certificate's SGX extensions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PckExtensions:
    fmspc: bytes
    pce_id: bytes
    pcesvn: int
    cpusvn: bytes
    tcb_components: tuple[int, ...]  # the 16 SGX TCB component SVNs
    ppid: bytes
    sgx_type: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fmspc": self.fmspc.hex(),
            "pce_id": self.pce_id.hex(),
            "pcesvn": self.pcesvn,
            "cpusvn": self.cpusvn.hex(),
            "tcb_components": list(self.tcb_components),
            "ppid": self.ppid.hex(),
            "sgx_type": {0: "Standard", 1: "Scalable", 2: "Scalable with integrity"}.get(
                self.sgx_type if self.sgx_type is not None else -1, self.sgx_type
            ),
        }


def pck_extensions(cert: x509.Certificate) -> PckExtensions:
    """Decode OID 1.2.840.113741.1.13.1 (FMSPC, PCE ID, PCESVN, CPUSVN and TCB components); ``ValueError``."""
    try:
        extension = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSIONS_OID))
    except x509.ExtensionNotFound:
        raise ValueError("the PCK certificate has no SGX extensions (OID 1.2.840.113741.1.13.1)") from None
    except (x509.DuplicateExtension, ValueError) as exc:
        raise ValueError(f"the PCK certificate's extensions do not decode: {exc}") from None
    value = extension.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    fields: dict[str, der.Tlv] = {}
    tcb: dict[str, der.Tlv] = {}
    try:
        top, _ = der.read_one(raw)
        for entry in top.children():
            oid, item = entry.children()[:2]
            fields[oid.as_oid()] = item
        for entry in fields[SGX_EXTENSIONS_OID + ".2"].children():
            oid, item = entry.children()[:2]
            tcb[oid.as_oid()] = item
        base = SGX_EXTENSIONS_OID + ".2."
        sgx_type = fields.get(SGX_EXTENSIONS_OID + ".5")
        return PckExtensions(
            fmspc=fields[SGX_EXTENSIONS_OID + ".4"].value,
            pce_id=fields[SGX_EXTENSIONS_OID + ".3"].value,
            pcesvn=tcb[base + "17"].as_int(),
            cpusvn=tcb[base + "18"].value,
            tcb_components=tuple(tcb[f"{base}{index}"].as_int() for index in range(1, 17)),
            ppid=fields[SGX_EXTENSIONS_OID + ".1"].value,
            sgx_type=None if sgx_type is None else sgx_type.as_int(),
        )
    except (der.DerError, KeyError, ValueError) as exc:
        raise ValueError(f"the PCK certificate's SGX extensions do not decode: {exc!r}") from None


# -- the checks ---------------------------------------------------------------------------------------------------
def signed_part(raw: bytes, quote: TdQuote) -> bytes:
    """Header ‖ (v5 body descriptor ‖) body: exactly what the attestation key signs."""
    return raw[: quote.body_offset + quote.body_size]


def _p256_key(raw_xy: bytes) -> ec.EllipticCurvePublicKey | None:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw_xy)
    except ValueError:
        return None


def _raw_verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if r == 0 or s == 0:
        return False
    return ecdsa_raw_verify(key, r, s, data, hashes.SHA256())


def verify_tdx_quote(
    raw: bytes,
    quote: TdQuote | None = None,
    *,
    at: dt.datetime | None = None,
    anchors: TrustAnchors = VENDOR_ROOTS,
    collateral: Collateral | None = None,
) -> SignatureReport:
    """Every offline check of a TD quote; ``anchors`` other than ``VENDOR_ROOTS`` are for tests only."""
    quote = quote or parse_quote(raw)
    at = at or dt.datetime.now(dt.timezone.utc)
    report = SignatureReport()
    try:
        cert_data = parse_certification_data(quote)
        certs = order_chain(load_pem_chain(cert_data.pck_chain_pem, "the PCK certificate chain"))
    except (CertificationDataError, ValueError) as exc:
        report.add("certification data", FAIL, str(exc))
        _quote_signature(report, raw, quote)
        return report
    report.add(
        "certification data",
        PASS,
        f"QE report, QE signature, {len(cert_data.qe_auth_data)} bytes of QE authentication data and a "
        f"{len(certs)}-certificate PCK chain",
    )
    _quote_signature(report, raw, quote)

    expected = hashlib.sha256(quote.attestation_key + cert_data.qe_auth_data).digest()
    qe_data = cert_data.qe_report.report_data
    if qe_data[:32] == expected and qe_data[32:] == bytes(32):
        report.add("QE report binding", PASS, "the QE report's REPORTDATA is SHA-256(attestation key ‖ QE auth data)")
    else:
        report.add(
            "QE report binding",
            FAIL,
            "the QE report's REPORTDATA is not SHA-256(attestation key ‖ QE auth data) followed by zeros: the "
            "attestation key was not certified by this Quoting Enclave",
        )

    pck = certs[0]
    pck_key = public_key_of(pck)
    if isinstance(pck_key, ec.EllipticCurvePublicKey) and _raw_verify(
        pck_key, cert_data.qe_report_signature, cert_data.qe_report.raw
    ):
        report.add("QE report signature", PASS, f"the QE report is signed by the PCK key ({common_name(pck.subject)})")
    else:
        report.add(
            "QE report signature", FAIL, "the QE report's signature does not verify under the PCK certificate's key"
        )

    roles = ["PCK", *[_ca_role(cert) for cert in certs[1:-1]], "root"] if len(certs) > 1 else ["PCK"]
    check_chain(
        report,
        list(zip(roles, certs, strict=True)),
        chain_name="PCK chain",
        root_trusted=lambda root: anchors.trusts_intel_root(public_key_of(root)),
        root_label=f"Intel SGX Root CA ({anchors.name})",
        at=at,
    )
    try:
        extensions = pck_extensions(pck)
        report.details["pck"] = extensions.to_dict()
    except ValueError as exc:
        extensions = None
        report.add("PCK extensions", FAIL, str(exc))
    report.details["qe_report"] = cert_data.qe_report.to_dict()

    if collateral is None:
        if report.ok:
            report.add("TCB status", NOTE, NO_COLLATERAL)
        else:
            report.add("TCB status", NOTE, "TCB status not checked (no collateral)")
    else:
        from pytest_tee.attestation.collateral import tdx_tcb_status

        tdx_tcb_status(report, quote, cert_data.qe_report, certs, extensions, collateral, anchors, at)
    return report


def _ca_role(cert: x509.Certificate) -> str:
    name = common_name(cert.subject)
    return "Processor CA" if "Processor" in name else "Platform CA" if "Platform" in name else "CA"


def _quote_signature(report: SignatureReport, raw: bytes, quote: TdQuote) -> None:
    key = _p256_key(quote.attestation_key)
    if key is None:
        report.add("quote signature", FAIL, "the attestation key is not a point on P-256")
    elif _raw_verify(key, quote.signature, signed_part(raw, quote)):
        report.add("quote signature", PASS, "header and TD body are signed by the quote's attestation key (P-256)")
    else:
        report.add(
            "quote signature",
            FAIL,
            "the ECDSA signature over header and TD body does not verify under the attestation key: the quote "
            "was changed after signing",
        )
