"""Vendor collateral handed in as files (``--collateral DIR``): TCB status and revocation, offline.

TDX, in the formats Intel's PCS serves them (``/tdx/certification/v4/tcb``, ``…/qe/identity``, ``pckcrl``):

- TCB info: the JSON body ``{"tcbInfo": {...}, "signature": "<hex r‖s>"}``; the signature is ECDSA P-256 over the
  exact bytes of the ``tcbInfo`` value, by Intel's TCB Signing certificate (``TCB-Info-Issuer-Chain`` header, saved
  as a PEM file), which must chain to the pinned Intel SGX Root CA;
- QE identity: ``{"enclaveIdentity": {...}, "signature": ...}``, signed the same way;
- CRLs (DER or PEM): the PCK CRL of the PCK's issuing CA, and the Root CA CRL; each must be signed by that CA.

SEV-SNP: AMD's CRL per product (``https://kdsintf.amd.com/vcek/v1/<product>/crl``, DER), signed by the ARK.

Files are recognised by content, not by name, so the names curl saved them under do not matter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pytest_tee.attestation.chain import (
    FAIL,
    NOTE,
    PASS,
    SignatureReport,
    check_signature,
    common_name,
    ecdsa_raw_verify,
    load_der_certificate,
    public_key_of,
    serial_of,
)
from pytest_tee.attestation.trust_roots import TrustAnchors
from pytest_tee.errors import InputError

if TYPE_CHECKING:
    from pytest_tee.attestation.tdx import TdQuote
    from pytest_tee.attestation.tdx_verify import PckExtensions, QeReport

# Worst last. Intel's statuses; "Revoked" also stands for a revoked PCK or CA.
STATUS_ORDER = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
)
ACCEPTABLE_WITH_NOTE = {"SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}


@dataclass(frozen=True)
class SignedJson:
    """A PCS JSON body: the signed value's exact text, its parsed form and the raw signature."""

    source: str
    key: str  # "tcbInfo" | "enclaveIdentity"
    signed_text: bytes
    body: dict[str, Any]
    signature: bytes


@dataclass
class Collateral:
    source: str
    tcb_info: SignedJson | None = None
    qe_identity: SignedJson | None = None
    crls: list[tuple[str, x509.CertificateRevocationList]] = field(default_factory=list)
    certs: list[x509.Certificate] = field(default_factory=list)  # issuer chains (TCB Signing, CAs)
    problems: list[str] = field(default_factory=list)


def _signed_json(path: Path, text: bytes) -> SignedJson | None:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    key = next((name for name in ("tcbInfo", "enclaveIdentity") if name in doc), None)
    if key is None or not isinstance(doc.get(key), dict):
        return None
    # The signature covers the value's bytes exactly as served: find them rather than re-serialising.
    decoded = text.decode("utf-8")
    try:
        start = decoded.index(":", decoded.index(f'"{key}"') + len(key) + 2) + 1
        while decoded[start] in " \t\r\n":
            start += 1
        _, end = json.JSONDecoder().raw_decode(decoded, start)
    except (ValueError, IndexError):
        return None
    try:
        signature = bytes.fromhex(str(doc.get("signature", "")))
    except ValueError:
        signature = b""
    return SignedJson(str(path), key, decoded[start:end].encode("utf-8"), doc[key], signature)


def load_collateral(path: str | Path) -> Collateral:
    """Every collateral file in a directory; ``InputError`` when it is not a directory or holds nothing usable."""
    directory = Path(path)
    if not directory.is_dir():
        raise InputError(f"--collateral {directory}: not a directory (expected TCB info, QE identity and CRL files)")
    found = Collateral(str(directory))
    for file in sorted(directory.iterdir()):
        if not file.is_file():
            continue
        data = file.read_bytes()
        signed = _signed_json(file, data) if data.lstrip()[:1] == b"{" else None
        if signed is not None:
            if signed.key == "tcbInfo":
                found.tcb_info = signed
            else:
                found.qe_identity = signed
            continue
        if not _load_x509(file, data, found):
            found.problems.append(f"{file.name}: not TCB info, QE identity, a CRL or a certificate")
    if found.tcb_info is None and found.qe_identity is None and not found.crls:
        raise InputError(
            f"--collateral {directory}: holds no TCB info, QE identity or CRL"
            + (f" ({'; '.join(found.problems)})" if found.problems else "")
        )
    return found


def _load_x509(file: Path, data: bytes, found: Collateral) -> bool:
    if b"-----BEGIN X509 CRL-----" in data:
        try:
            found.crls.append((file.name, x509.load_pem_x509_crl(data)))
            return True
        except ValueError:
            return False
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            found.certs.extend(x509.load_pem_x509_certificates(data.rstrip(b"\x00").strip()))
            return True
        except (ValueError, x509.InvalidVersion):
            return False
    try:
        found.crls.append((file.name, x509.load_der_x509_crl(data)))
        return True
    except ValueError:
        pass
    try:
        found.certs.append(load_der_certificate(data))
        return True
    except ValueError:
        return False


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _check_signed_json(
    item: SignedJson, pool: Sequence[x509.Certificate], anchors: TrustAnchors, at: dt.datetime
) -> list[str]:
    """Problems with one PCS JSON: signature by a certificate that chains to the pinned root, and freshness."""
    what = "TCB info" if item.key == "tcbInfo" else "QE identity"
    problems = []
    signer = None
    if len(item.signature) == 64:
        r = int.from_bytes(item.signature[:32], "big")
        s = int.from_bytes(item.signature[32:], "big")
        for cert in pool:
            key = public_key_of(cert)
            if isinstance(key, ec.EllipticCurvePublicKey) and ecdsa_raw_verify(
                key, r, s, item.signed_text, hashes.SHA256()
            ):
                signer = cert
                break
    if signer is None:
        problems.append(f"{what}'s signature does not verify under any certificate in the collateral")
    else:
        roots = [
            cert for cert in pool if cert.subject == signer.issuer and anchors.trusts_intel_root(public_key_of(cert))
        ]
        if not any(check_signature(root, signer) is None for root in roots):
            problems.append(
                f"{what} is signed by {common_name(signer.subject)!r}, which does not chain to the pinned root"
            )
        if not signer.not_valid_before_utc <= at <= signer.not_valid_after_utc:
            problems.append(f"{what}'s signing certificate is not valid at {at.isoformat()}")
    next_update = _parse_time(item.body.get("nextUpdate"))
    if next_update is None or at > next_update:
        problems.append(f"{what} expired (nextUpdate {item.body.get('nextUpdate')}): fetch fresh collateral")
    return problems


def _crl_checks(
    crls: Sequence[tuple[str, x509.CertificateRevocationList]],
    chain: Sequence[tuple[str, x509.Certificate]],
    at: dt.datetime,
) -> tuple[list[str], list[str], list[str]]:
    """(collateral problems, revoked certificates, CA roles whose CRL was checked) for a leaf-first chain."""
    problems, revoked, checked = [], [], []
    issuers = {cert.subject: (role, cert) for role, cert in chain}
    for name, crl in crls:
        issuer = issuers.get(crl.issuer)
        if issuer is None:
            continue  # a CRL for another CA (e.g. the Processor CA when the PCK came from the Platform CA)
        role, ca = issuer
        key = public_key_of(ca)
        try:
            signed = key is not None and crl.is_signature_valid(key)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            signed = False
        if not signed:
            problems.append(f"{name}: the CRL of {role} {common_name(ca.subject)!r} is not signed by it")
            continue
        next_update = crl.next_update_utc
        if next_update is not None and at > next_update:
            problems.append(f"{name}: the CRL of {common_name(ca.subject)!r} expired {next_update.isoformat()}")
        checked.append(role)
        for child_role, child in chain:
            listed = crl.get_revoked_certificate_by_serial_number(serial_of(child)) is not None
            if child.issuer == ca.subject and child is not ca and listed:
                revoked.append(f"{child_role} {common_name(child.subject)!r} (serial {serial_of(child):x})")
    return problems, revoked, checked


def _report_revocation(report: SignatureReport, revoked: list[str], checked: list[str], chain_cas: list[str]) -> None:
    if revoked:
        report.add("revocation", FAIL, "revoked: " + "; ".join(revoked))
    elif checked:
        missing = [role for role in chain_cas if role not in checked]
        gap = f" (no CRL for {', '.join(missing)})" if missing else ""
        report.add("revocation", PASS, f"not revoked according to the CRLs of {', '.join(checked)}{gap}")
    else:
        report.add("revocation", NOTE, "revocation not checked: the collateral holds no CRL of this chain's CAs")


def _worst(statuses: list[str]) -> str:
    rank = {name: index for index, name in enumerate(STATUS_ORDER)}
    return max(statuses, key=lambda status: rank.get(status, len(STATUS_ORDER)))


def _status_outcome(status: str) -> str:
    if status == "UpToDate":
        return PASS
    return NOTE if status in ACCEPTABLE_WITH_NOTE else FAIL


def _svns(items: Any) -> list[int]:
    return [int(item.get("svn", 0)) if isinstance(item, dict) else int(item) for item in items or []]


def _platform_level(body: dict[str, Any], extensions: PckExtensions, tee_tcb_svn: bytes) -> dict[str, Any] | None:
    """Intel's rule: the first TCB level whose SGX components, PCESVN and TDX components the platform meets."""
    start = 2 if tee_tcb_svn[1] > 0 else 0  # TDX 1.5: bytes 0-1 are the module's version, judged by identity
    for level in body.get("tcbLevels") or []:
        tcb = level.get("tcb") or {}
        sgx = _svns(tcb.get("sgxtcbcomponents"))
        tdx = _svns(tcb.get("tdxtcbcomponents"))
        if len(sgx) != 16 or (tdx and len(tdx) != 16):
            continue
        if any(have < need for have, need in zip(extensions.tcb_components, sgx, strict=True)):
            continue
        if extensions.pcesvn < int(tcb.get("pcesvn", 0)):
            continue
        if tdx and any(tee_tcb_svn[index] < tdx[index] for index in range(start, 16)):
            continue
        return dict(level)
    return None


def _qe_identity_problems(body: dict[str, Any], qe: QeReport) -> list[str]:
    problems = []
    try:
        if bytes.fromhex(body.get("mrsigner", "")) != qe.mrsigner:
            problems.append("the QE's MRSIGNER is not the one in the QE identity")
        if int(body.get("isvprodid", -1)) != qe.isvprodid:
            problems.append(f"the QE's ISVPRODID {qe.isvprodid} is not {body.get('isvprodid')}")
        mask = int(body.get("miscselectMask", "0"), 16)
        if qe.miscselect & mask != int(body.get("miscselect", "0"), 16) & mask:
            problems.append("the QE's MISCSELECT does not match the QE identity")
        attr_mask = bytes.fromhex(body.get("attributesMask", "00" * 16))
        attributes = bytes.fromhex(body.get("attributes", "00" * 16))
        masked = bytes(a & m for a, m in zip(qe.attributes, attr_mask, strict=False))
        if masked != bytes(a & m for a, m in zip(attributes, attr_mask, strict=False)):
            problems.append("the QE's ATTRIBUTES do not match the QE identity")
    except (ValueError, TypeError) as exc:
        problems.append(f"the QE identity does not decode: {exc}")
    return problems


def tdx_tcb_status(
    report: SignatureReport,
    quote: TdQuote,
    qe: QeReport,
    certs: Sequence[x509.Certificate],
    extensions: PckExtensions | None,
    collateral: Collateral,
    anchors: TrustAnchors,
    at: dt.datetime,
) -> None:
    """Add ``collateral``, ``revocation`` and ``TCB status`` steps for a TD quote."""
    try:
        _tdx_tcb_status(report, quote, qe, certs, extensions, collateral, anchors, at)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # Collateral is input from outside: a field of the wrong shape is a failed check, not a traceback.
        report.add("collateral", FAIL, f"{collateral.source}: the collateral does not decode ({exc!r})")


def _tdx_tcb_status(
    report: SignatureReport,
    quote: TdQuote,
    qe: QeReport,
    certs: Sequence[x509.Certificate],
    extensions: PckExtensions | None,
    collateral: Collateral,
    anchors: TrustAnchors,
    at: dt.datetime,
) -> None:
    pool = [*collateral.certs, *certs]
    problems = list(collateral.problems)
    tcb_info, qe_identity = collateral.tcb_info, collateral.qe_identity
    if tcb_info is None:
        problems.append("no TCB info (the PCS /tdx/certification/v4/tcb response)")
    else:
        problems.extend(_check_signed_json(tcb_info, pool, anchors, at))
        if tcb_info.body.get("id") != "TDX":
            problems.append(
                f"TCB info has id {tcb_info.body.get('id')!r}, not 'TDX': fetch /tdx/certification/v4/tcb, not the "
                "SGX one"
            )
        if extensions is not None:
            fmspc = str(tcb_info.body.get("fmspc", "")).lower()
            if fmspc != extensions.fmspc.hex():
                problems.append(f"TCB info is for FMSPC {fmspc}, the PCK certificate says {extensions.fmspc.hex()}")
            pce_id = str(tcb_info.body.get("pceId", "")).lower()
            if pce_id != extensions.pce_id.hex():
                problems.append(f"TCB info is for PCE ID {pce_id}, the PCK certificate says {extensions.pce_id.hex()}")
    if qe_identity is None:
        problems.append("no QE identity (the PCS /tdx/certification/v4/qe/identity response)")
    else:
        problems.extend(_check_signed_json(qe_identity, pool, anchors, at))
        if qe_identity.body.get("id") != "TD_QE":
            problems.append(f"QE identity has id {qe_identity.body.get('id')!r}, not 'TD_QE' (the TDX Quoting Enclave)")
    roles = ["PCK", *["CA"] * (len(certs) - 2), "root"] if len(certs) > 1 else ["PCK"]
    chain = list(zip(roles, certs, strict=True))
    crl_problems, revoked, checked = _crl_checks(collateral.crls, chain, at)
    problems.extend(crl_problems)
    if problems:
        report.add("collateral", FAIL, f"{collateral.source}: " + "; ".join(problems))
    else:
        report.add(
            "collateral", PASS, f"{collateral.source}: TCB info, QE identity and CRLs signed under the pinned root"
        )
    _report_revocation(report, revoked, checked, [role for role, _ in chain[1:]])
    if problems or extensions is None or tcb_info is None or qe_identity is None:
        report.add(
            "TCB status",
            FAIL if revoked else NOTE,
            "Revoked" if revoked else "not determined: the collateral is not usable",
        )
        return
    level = _platform_level(tcb_info.body, extensions, quote.tee_tcb_svn)
    qe_problems = _qe_identity_problems(qe_identity.body, qe)
    qe_level = next(
        (
            item
            for item in qe_identity.body.get("tcbLevels") or []
            if qe.isvsvn >= int((item.get("tcb") or {}).get("isvsvn", 0))
        ),
        None,
    )
    if level is None:
        report.add("TCB status", FAIL, "no TCB level in the TCB info matches this platform (TCB unrecognised)")
        return
    if qe_problems:
        report.add("TCB status", FAIL, "; ".join(qe_problems))
        return
    platform_status = str(level.get("tcbStatus", "?"))
    qe_status = str(qe_level.get("tcbStatus", "?")) if qe_level else "OutOfDate"
    status = _worst([platform_status, qe_status, *(["Revoked"] if revoked else [])])
    advisories = level.get("advisoryIDs") or []
    report.details["tcb_status"] = {
        "status": status,
        "platform": platform_status,
        "qe": qe_status,
        "tcb_date": level.get("tcbDate"),
        "advisories": advisories,
    }
    extra = f", advisories {', '.join(advisories)}" if advisories else ""
    report.add(
        "TCB status",
        _status_outcome(status),
        f"{status} (platform {platform_status} at TCB level {level.get('tcbDate')}, QE {qe_status}{extra})",
    )


def snp_revocation_status(
    report: SignatureReport,
    chain: Sequence[tuple[str, x509.Certificate]],
    product: str,
    collateral: Collateral,
    anchors: TrustAnchors,
    at: dt.datetime,
) -> None:
    """Add ``collateral``, ``revocation`` and ``TCB status`` steps for an SNP report (the ARK signs AMD's CRL)."""
    ark = chain[-1][1]
    problems, revoked, checked = _crl_checks(collateral.crls, chain, at)
    if not anchors.trusts_amd_ark(product, public_key_of(ark)):
        problems.append("the ARK is not pinned, so its CRL proves nothing")
    if problems:
        report.add("collateral", FAIL, f"{collateral.source}: " + "; ".join(problems))
    else:
        report.add(
            "collateral",
            PASS if checked else NOTE,
            f"{collateral.source}: "
            + (f"AMD's CRL for {product}, signed by the ARK" if checked else f"no CRL issued by ARK-{product}"),
        )
    _report_revocation(report, revoked, checked, [role for role, _ in chain[1:-1]])
    if revoked:
        report.add("TCB status", FAIL, "Revoked")
    else:
        report.add(
            "TCB status",
            NOTE,
            "not revoked" if checked else "revocation unknown",
        )
