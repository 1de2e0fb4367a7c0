"""Offline verification of an SEV-SNP attestation report up to AMD's pinned ARK for the chip's product.

Steps (each one a ``Step``):

1. ``certificates``: the endorsement key named by the report's KEY_INFO (VCEK or VLEK) and its ASK (ASVK) and
   ARK, from the extended report's certificate table (configfs-tsm ``auxblob``) or a directory of files; an ASK
   or ARK that neither holds is taken from the copies pytest-tee ships (they must verify like any other);
2. ``report signature``: ECDSA P-384 / SHA-384 over bytes 0..0x29F under the VCEK/VLEK;
3. ``VCEK chain`` (``VLEK chain``), ``root pin``, ``validity``: VCEK → ASK → ARK, RSASSA-PSS, ARK pinned per product;
4. ``VCEK TCB``: the certificate's TCB extensions equal the report's REPORTED_TCB, its hwID the report's CHIP_ID;
5. ``TCB status``: only with collateral (AMD's CRL), otherwise a note saying so.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
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
    load_der_certificate,
    public_key_of,
)
from pytest_tee.attestation.sev import SnpReport, parse_snp_report
from pytest_tee.attestation.tdx_verify import load_pem_chain
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors
from pytest_tee.errors import InputError

if TYPE_CHECKING:
    from pytest_tee.attestation.collateral import Collateral

SNP_SIGNED_SIZE = 0x2A0
AMD_OID = "1.3.6.1.4.1.3704.1"
SIGNING_KEYS = {0: "VCEK", 1: "VLEK", 7: "none"}
CERT_TABLE_GUIDS = {
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "VCEK",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "VLEK",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ASK",
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ARK",
}
CERT_SUFFIXES = (".der", ".cer", ".crt", ".pem", ".cert")
NO_COLLATERAL = "signature chain valid; TCB status not checked (no collateral)"


@dataclass
class SnpCertificates:
    """VCEK/VLEK, ASK/ASVK and ARK as found, with where each came from."""

    certs: dict[str, x509.Certificate] = field(default_factory=dict)  # role → the first certificate found
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    everything: list[tuple[str, x509.Certificate, str]] = field(default_factory=list)  # (role, cert, source)

    def add(self, cert: x509.Certificate, source: str) -> None:
        role = role_of(cert)
        if role is None:
            self.problems.append(f"{source}: {common_name(cert.subject)!r} is not a VCEK, VLEK, ASK, ASVK or ARK")
            return
        self.certs.setdefault(role, cert)
        self.sources.setdefault(role, source)
        self.everything.append((role, cert, source))

    def merge(self, other: SnpCertificates) -> None:
        for _, cert, source in other.everything:
            self.add(cert, source)
        self.problems.extend(other.problems)

    def issuer_of(self, role: str, cert: x509.Certificate) -> tuple[x509.Certificate, str] | None:
        """The given ``role`` certificate named as ``cert``'s issuer (a directory may hold several products')."""
        for found_role, candidate, source in self.everything:
            if found_role == role and candidate.subject == cert.issuer:
                return candidate, source
        return None


def role_of(cert: x509.Certificate) -> str | None:
    name = common_name(cert.subject)
    if name == "SEV-VCEK":
        return "VCEK"
    if name == "SEV-VLEK":
        return "VLEK"
    if name.startswith("ARK-"):
        return "ARK"
    if name.startswith("SEV-VLEK-") or name.startswith("ASVK-"):
        return "ASVK"
    if name.startswith("SEV-"):
        return "ASK"
    return None


def parse_cert_table(blob: bytes, source: str = "auxblob") -> SnpCertificates:
    """The GHCB certificate table: (GUID, offset, length) entries up to an all-zero one, then the DER certificates."""
    found = SnpCertificates()
    for index in range(0, len(blob), 24):
        entry = blob[index : index + 24]
        if len(entry) < 24:
            found.problems.append(f"{source}: the certificate table is truncated at byte {index}")
            break
        if entry == bytes(24):
            break
        offset = int.from_bytes(entry[16:20], "little")
        length = int.from_bytes(entry[20:24], "little")
        # The GUID's byte order differs between writers; accept both.
        role = CERT_TABLE_GUIDS.get(uuid.UUID(bytes_le=entry[:16])) or CERT_TABLE_GUIDS.get(uuid.UUID(bytes=entry[:16]))
        if role is None:
            continue
        if offset + length > len(blob) or length == 0:
            found.problems.append(f"{source}: the {role} entry points past the end of the table")
            continue
        try:
            found.add(load_der_certificate(blob[offset : offset + length]), f"{source} ({role})")
        except ValueError:
            found.problems.append(f"{source}: the {role} entry is not a DER certificate")
    return found


def load_cert_dir(path: str | Path) -> SnpCertificates:
    """Every certificate file (DER or PEM) in a directory, e.g. ``vcek.der`` and KDS's ``cert_chain`` (ASK+ARK)."""
    directory = Path(path)
    if not directory.is_dir():
        raise InputError(f"--snp-certs {directory}: not a directory (expected one holding vcek.der, ask.pem, ark.pem)")
    found = SnpCertificates()
    for file in sorted(directory.iterdir()):
        if not file.is_file() or file.suffix.lower() not in (*CERT_SUFFIXES, ""):
            continue
        data = file.read_bytes()
        try:
            certs = (
                load_pem_chain(data, str(file))
                if b"-----BEGIN CERTIFICATE-----" in data
                else [load_der_certificate(data)]
            )
        except ValueError as exc:
            found.problems.append(f"{file}: not a certificate ({exc})")
            continue
        for cert in certs:
            found.add(cert, str(file))
    return found


# -- TCB versions --------------------------------------------------------------------------------------------------
TCB_FIELDS = ("fmc", "bootloader", "tee", "snp", "microcode")


def decode_tcb(value: int, product: str) -> dict[str, int]:
    """REPORTED_TCB's SPLs: Milan/Genoa bytes 0,1,6,7; Turin bytes 0 (FMC),1,2,3,7."""
    parts = value.to_bytes(8, "little")
    if product == "Turin":
        return {"fmc": parts[0], "bootloader": parts[1], "tee": parts[2], "snp": parts[3], "microcode": parts[7]}
    return {"bootloader": parts[0], "tee": parts[1], "snp": parts[6], "microcode": parts[7]}


def _ext(cert: x509.Certificate, oid: str) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def vcek_tcb(cert: x509.Certificate) -> dict[str, Any]:
    """The VCEK/VLEK extensions: product name, the SPLs it was issued for, and (VCEK) the chip's hwID."""
    out: dict[str, Any] = {}
    names = {"3.9": "fmc", "3.1": "bootloader", "3.2": "tee", "3.3": "snp", "3.8": "microcode"}
    for suffix, name in names.items():
        raw = _ext(cert, f"{AMD_OID}.{suffix}")
        if raw is not None:
            out[name] = der.read_one(raw)[0].as_int()
    product = _ext(cert, f"{AMD_OID}.2")
    if product is not None:
        out["product_name"] = der.read_one(product)[0].value.decode("ascii", "replace")
    hwid = _ext(cert, f"{AMD_OID}.4")
    if hwid is not None:
        # AMD stores the 64 raw bytes without an OCTET STRING wrapper; accept a wrapped one too.
        out["hwid"] = (hwid[2:] if len(hwid) == 66 and hwid[0] == der.OCTET_STRING else hwid).hex()
    return out


def product_of(cert: x509.Certificate, tcb: dict[str, Any]) -> str | None:
    name = tcb.get("product_name") or common_name(cert.issuer).removeprefix("SEV-VLEK-").removeprefix("SEV-")
    for product in ("Milan", "Genoa", "Turin"):
        if str(name).startswith(product):
            return product
    return None


def product_from_cpuid(report: SnpReport) -> str | None:
    """The product a v3+ report's CPUID family/model names (v2 reports leave these bytes zero)."""
    family, model = report.cpuid_fam_id, report.cpuid_mod_id
    if family == 0x19:
        return "Milan" if model <= 0x0F else "Genoa" if model <= 0x1F or 0xA0 <= model <= 0xAF else None
    if family == 0x1A and model <= 0x11:
        return "Turin"
    return None


def kds_hint(report: SnpReport) -> str:
    """Where AMD serves this chip's VCEK for this TCB (fetch it once, then hand it in with --snp-certs)."""
    product = product_from_cpuid(report) or "PRODUCT"
    tcb = decode_tcb(report.reported_tcb, product)
    query = "&".join(
        f"{name}SPL={tcb[key]:02d}"
        for name, key in (("fmc", "fmc"), ("bl", "bootloader"), ("tee", "tee"), ("snp", "snp"), ("ucode", "microcode"))
        if key in tcb
    )
    chip = report.chip_id.hex() if product != "Turin" else report.chip_id[:8].hex()
    return f"https://kdsintf.amd.com/vcek/v1/{product}/{chip}?{query}"


# -- the checks ----------------------------------------------------------------------------------------------------
def verify_snp_report(
    raw: bytes,
    report: SnpReport | None = None,
    *,
    certificates: SnpCertificates | None = None,
    at: dt.datetime | None = None,
    anchors: TrustAnchors = VENDOR_ROOTS,
    collateral: Collateral | None = None,
) -> SignatureReport:
    """Every offline check of an SNP report; ``anchors`` other than ``VENDOR_ROOTS`` are for tests only."""
    report = report or parse_snp_report(raw)
    at = at or dt.datetime.now(dt.timezone.utc)
    result = SignatureReport()
    found = certificates or SnpCertificates()
    key_kind = SIGNING_KEYS.get(report.key_info >> 2 & 0x7, "reserved")
    if key_kind not in ("VCEK", "VLEK"):
        result.add("certificates", FAIL, f"KEY_INFO says the report is signed by {key_kind!r}: nothing to verify")
        return result
    leaf = found.certs.get(key_kind)
    if leaf is None:
        given = ", ".join(f"{role} from {source}" for role, source in found.sources.items())
        where = f"none among the certificates given ({given})" if given else "no certificates were given"
        problems = f" ({'; '.join(found.problems)})" if found.problems else ""
        result.add(
            "certificates",
            FAIL,
            f"no {key_kind} certificate: {where}{problems}; pass --snp-certs DIR holding the {key_kind} from AMD's "
            f"KDS ({kds_hint(report) if key_kind == 'VCEK' else 'kdsintf.amd.com/vlek/v1'})",
        )
        return result
    try:
        tcb = vcek_tcb(leaf)
    except (ValueError, x509.DuplicateExtension) as exc:
        result.add("certificates", FAIL, f"the {key_kind}'s AMD extensions do not decode: {exc}")
        return result
    product = product_of(leaf, tcb)
    if product is None:
        result.add("certificates", FAIL, f"cannot tell the AMD product of {key_kind} {leaf.subject.rfc4514_string()}")
        return result
    issuer_role = "ASK" if key_kind == "VCEK" else "ASVK"
    shipped = anchors.amd_product_chains.get(product)
    sources = {key_kind: found.sources[key_kind]}
    chain: list[tuple[str, x509.Certificate]] = [(key_kind, leaf)]
    for role, index in ((issuer_role, 0), ("ARK", 1)):
        # Prefer a given certificate that the names link to, then the shipped copy, then any of that role (which
        # then fails the chain check, saying why).
        match = found.issuer_of(role, chain[-1][1])
        cert, source = match if match is not None else (None, "")
        if cert is None and shipped is not None and role != "ASVK":
            cert, source = (
                load_pem_chain(shipped[index], f"built-in {role}")[0],
                f"pytest-tee's copy of AMD's {role}-{product}",
            )
        if cert is None and role in found.certs:
            cert, source = found.certs[role], found.sources[role]
        if cert is None:
            result.add("certificates", FAIL, f"no {role} certificate for {product}: pass --snp-certs DIR with it")
            return result
        chain.append((role, cert))
        sources[role] = source
    result.add(
        "certificates", PASS, f"{product}: " + ", ".join(f"{role} from {source}" for role, source in sources.items())
    )
    result.details.update({"product": product, "signing_key": key_kind, "vcek_tcb": tcb})

    key = public_key_of(leaf)
    r = int.from_bytes(report.signature[0:72], "little")
    s = int.from_bytes(report.signature[72:144], "little")
    signed = raw[:SNP_SIGNED_SIZE]
    if isinstance(key, ec.EllipticCurvePublicKey) and r and s and ecdsa_raw_verify(key, r, s, signed, hashes.SHA384()):
        result.add("report signature", PASS, f"the report is signed by the {key_kind} (ECDSA P-384)")
    else:
        result.add(
            "report signature",
            FAIL,
            f"the ECDSA P-384 signature does not verify under the {key_kind}: the report was changed or signed by "
            "another chip",
        )
    check_chain(
        result,
        chain,
        chain_name=f"{key_kind} chain",
        root_trusted=lambda root: anchors.trusts_amd_ark(product, public_key_of(root)),
        root_label=f"AMD ARK-{product} ({anchors.name})",
        at=at,
    )
    _check_tcb_match(result, report, tcb, product, key_kind)
    if collateral is None:
        result.add("TCB status", NOTE, NO_COLLATERAL if result.ok else "TCB status not checked (no collateral)")
    else:
        from pytest_tee.attestation.collateral import snp_revocation_status

        snp_revocation_status(result, chain, product, collateral, anchors, at)
    return result


def _check_tcb_match(result: SignatureReport, report: SnpReport, tcb: dict[str, Any], product: str, kind: str) -> None:
    reported = decode_tcb(report.reported_tcb, product)
    differing = [f"{name} {tcb.get(name)} ≠ {value}" for name, value in reported.items() if tcb.get(name) != value]
    hwid = tcb.get("hwid")
    if kind == "VCEK" and hwid is not None and report.chip_id != bytes(64) and hwid != report.chip_id.hex():
        differing.append("hwID ≠ the report's CHIP_ID (a VCEK of another chip)")
    shown = ", ".join(f"{name} {value}" for name, value in reported.items())
    if differing:
        result.add(f"{kind} TCB", FAIL, f"the {kind} was issued for another TCB or chip: " + "; ".join(differing))
    else:
        result.add(f"{kind} TCB", PASS, f"the {kind} was issued for the report's REPORTED_TCB ({shown})")
