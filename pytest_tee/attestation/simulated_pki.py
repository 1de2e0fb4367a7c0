"""Self-made Intel-like and AMD-like certificate hierarchies that sign simulated quotes and reports.

For simulations and tests only. The keys are derived from fixed labels, so ``SIMULATED_ANCHORS`` (their roots) is
the same in every process — a test can hand it to the verifier through the test-only ``anchors=`` keyword. The
command line never trusts these roots: a simulated quote fails there on ``root pin`` and nothing else.

The simulated ARK/ASK are ECDSA P-384 keys rather than AMD's RSA-4096 with RSASSA-PSS (RSA keys cannot be derived
from a label); the RSA-PSS path is exercised by AMD's real Milan chain in the tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID

from pytest_tee.attestation import der
from pytest_tee.attestation.sev import SnpReport
from pytest_tee.attestation.tdx import TdQuote
from pytest_tee.attestation.trust_roots import TrustAnchors, spki, spki_sha256

SGX_OID = "1.2.840.113741.1.13.1"
AMD_OID = "1.3.6.1.4.1.3704.1"
SNP_SIGNED_SIZE = 0x2A0
NOT_BEFORE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
LEAF_NOT_AFTER = dt.datetime(2034, 1, 1, tzinfo=dt.timezone.utc)

# GUIDs of the SEV-SNP extended-report certificate table (GHCB specification, as in the kernel and go-sev-guest).
GUID_VCEK = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")
GUID_VLEK = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")
GUID_ASK = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
GUID_ARK = uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae")


def derived_key(label: str, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    """A private key that is the same in every run: the scalar is a hash of ``label``."""
    digest = hashlib.sha512(f"pytest-tee simulated key: {label}".encode()).digest()
    return ec.derive_private_key(int.from_bytes(digest, "big") % (2**255) + 1, curve)


def _name(common: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def make_cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    serial: int,
    ca: bool,
    not_before: dt.datetime = NOT_BEFORE,
    not_after: dt.datetime = NOT_AFTER,
    extensions: tuple[x509.UnrecognizedExtension, ...] = (),
) -> x509.Certificate:
    algorithm = hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, algorithm)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def _ecdsa_raw(
    key: ec.EllipticCurvePrivateKey, data: bytes, algorithm: hashes.HashAlgorithm, size: int
) -> tuple[bytes, bytes]:
    r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
    return r.to_bytes(size, "big"), s.to_bytes(size, "big")


# -- Intel-like -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PckTcb:
    """What the simulated PCK certificate says about the platform."""

    fmspc: bytes = bytes.fromhex("00806f050000")
    pce_id: bytes = bytes.fromhex("0000")
    pcesvn: int = 13
    tcb_components: tuple[int, ...] = (3, 3, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0)


def sgx_extension(tcb: PckTcb) -> x509.UnrecognizedExtension:
    components = [
        der.encode_seq(der.encode_oid(f"{SGX_OID}.2.{index + 1}"), der.encode_int(svn))
        for index, svn in enumerate(tcb.tcb_components)
    ]
    components.append(der.encode_seq(der.encode_oid(f"{SGX_OID}.2.17"), der.encode_int(tcb.pcesvn)))
    components.append(
        der.encode_seq(der.encode_oid(f"{SGX_OID}.2.18"), der.encode(der.OCTET_STRING, bytes(tcb.tcb_components)))
    )
    body = der.encode_seq(
        der.encode_seq(der.encode_oid(f"{SGX_OID}.1"), der.encode(der.OCTET_STRING, bytes(range(16)))),
        der.encode_seq(der.encode_oid(f"{SGX_OID}.2"), der.encode_seq(*components)),
        der.encode_seq(der.encode_oid(f"{SGX_OID}.3"), der.encode(der.OCTET_STRING, tcb.pce_id)),
        der.encode_seq(der.encode_oid(f"{SGX_OID}.4"), der.encode(der.OCTET_STRING, tcb.fmspc)),
        der.encode_seq(der.encode_oid(f"{SGX_OID}.5"), der.encode_int(0, der.ENUMERATED)),
    )
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_OID), body)


class SimulatedIntelPki:
    """Root → PCK Platform CA → PCK certificate, a TCB Signing certificate, and a QE that signs quotes.

    ``names`` "intel" gives Intel's own subject names (to show that names prove nothing); the default says what
    it is.
    """

    def __init__(
        self,
        label: str = "intel",
        *,
        tcb: PckTcb | None = None,
        intel_names: bool = False,
        pck_not_after: dt.datetime = LEAF_NOT_AFTER,
    ) -> None:
        self.tcb = tcb or PckTcb()
        org = "Intel Corporation" if intel_names else "pytest-tee simulation"
        prefix = "Intel SGX" if intel_names else "Simulated SGX"
        self.root_key = derived_key(f"{label} root", ec.SECP256R1())
        self.ca_key = derived_key(f"{label} platform CA", ec.SECP256R1())
        self.pck_key = derived_key(f"{label} PCK", ec.SECP256R1())
        self.tcb_signing_key = derived_key(f"{label} TCB signing", ec.SECP256R1())
        self.attestation_key = derived_key(f"{label} attestation key", ec.SECP256R1())
        root_name = _name(f"{prefix} Root CA", org)
        ca_name = _name(f"{prefix} PCK Platform CA", org)
        self.root = make_cert(root_name, self.root_key, root_name, self.root_key, serial=1, ca=True)
        self.platform_ca = make_cert(ca_name, self.ca_key, root_name, self.root_key, serial=2, ca=True)
        self.pck = make_cert(
            _name(f"{prefix} PCK Certificate", org),
            self.pck_key,
            ca_name,
            self.ca_key,
            serial=0x1234,
            ca=False,
            not_after=pck_not_after,
            extensions=(sgx_extension(self.tcb),),
        )
        self.tcb_signing = make_cert(
            _name(f"{prefix} TCB Signing", org), self.tcb_signing_key, root_name, self.root_key, serial=3, ca=False
        )
        self.qe_mrsigner = hashlib.sha256(b"simulated QE signer").digest()
        self.qe_isvsvn = 8

    @property
    def anchors(self) -> TrustAnchors:
        return replace(SIMULATED_AMD_ANCHORS, intel_root_spki=spki(self.root.public_key()), name="simulated roots")

    def qe_report(self, auth_data: bytes) -> bytes:
        report = bytearray(384)
        report[0:16] = bytes(self.tcb.tcb_components)
        report[48:64] = bytes.fromhex("11000000000000000000000000000000")
        report[64:96] = hashlib.sha256(b"simulated QE").digest()
        report[128:160] = self.qe_mrsigner
        report[256:258] = (2).to_bytes(2, "little")  # ISVPRODID of the TD QE
        report[258:260] = self.qe_isvsvn.to_bytes(2, "little")
        attestation_key = self.attestation_key_bytes
        report[320:352] = hashlib.sha256(attestation_key + auth_data).digest()
        return bytes(report)

    @property
    def attestation_key_bytes(self) -> bytes:
        point = self.attestation_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return point[1:]

    def certification_data(self, chain: bytes | None = None) -> bytes:
        auth_data = bytes(range(32))
        qe_report = self.qe_report(auth_data)
        r, s = _ecdsa_raw(self.pck_key, qe_report, hashes.SHA256(), 32)
        chain = pem(self.pck, self.platform_ca, self.root) if chain is None else chain
        return (
            qe_report
            + r
            + s
            + struct.pack("<H", len(auth_data))
            + auth_data
            + struct.pack("<HI", 5, len(chain))
            + chain
        )

    def sign_quote(self, quote: TdQuote, *, chain: bytes | None = None) -> TdQuote:
        """The quote with this QE's attestation key, certification data and a valid signature."""
        unsigned = replace(
            quote,
            att_key_type=2,
            attestation_key=self.attestation_key_bytes,
            certification_data_type=6,
            certification_data=self.certification_data(chain),
            signature=bytes(64),
        )
        blob = unsigned.to_bytes()
        r, s = _ecdsa_raw(self.attestation_key, blob[: quote.body_offset + quote.body_size], hashes.SHA256(), 32)
        return replace(unsigned, signature=r + s)

    # -- collateral, in the formats Intel's PCS serves ------------------------------------------------------------
    def tcb_level(
        self,
        status: str,
        *,
        bump: int = 0,
        tdx_components: tuple[int, ...] = (3, 0, 4) + (0,) * 13,
        date: str = "2024-03-13T00:00:00Z",
        advisories: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A TCB level at this platform's SVNs, or ``bump`` above them (a level this platform does not reach)."""
        return {
            "tcb": {
                "sgxtcbcomponents": [{"svn": svn + bump} for svn in self.tcb.tcb_components],
                "pcesvn": self.tcb.pcesvn,
                "tdxtcbcomponents": [{"svn": svn} for svn in tdx_components],
            },
            "tcbDate": date,
            "tcbStatus": status,
            "advisoryIDs": list(advisories),
        }

    def _signed_json(self, key: str, body: dict[str, Any]) -> bytes:
        text = json.dumps(body, separators=(",", ":"))
        r, s = _ecdsa_raw(self.tcb_signing_key, text.encode(), hashes.SHA256(), 32)
        return f'{{"{key}":{text},"signature":"{(r + s).hex()}"}}'.encode()

    def tcb_info(
        self,
        levels: list[dict[str, Any]],
        *,
        fmspc: bytes | None = None,
        next_update: str = "2049-01-01T00:00:00Z",
        kind: str = "TDX",
    ) -> bytes:
        body = {
            "id": kind,
            "version": 3,
            "issueDate": "2024-06-01T00:00:00Z",
            "nextUpdate": next_update,
            "fmspc": (fmspc or self.tcb.fmspc).hex(),
            "pceId": self.tcb.pce_id.hex(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tcbLevels": levels,
        }
        return self._signed_json("tcbInfo", body)

    def qe_identity(self, status: str = "UpToDate", *, next_update: str = "2049-01-01T00:00:00Z") -> bytes:
        body = {
            "id": "TD_QE",
            "version": 2,
            "issueDate": "2024-06-01T00:00:00Z",
            "nextUpdate": next_update,
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": self.qe_mrsigner.hex().upper(),
            "isvprodid": 2,
            "tcbLevels": [{"tcb": {"isvsvn": self.qe_isvsvn}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": status}],
        }
        return self._signed_json("enclaveIdentity", body)

    def issuer_chain(self) -> bytes:
        """What PCS sends in ``TCB-Info-Issuer-Chain``: the TCB Signing certificate and the root."""
        return pem(self.tcb_signing, self.root)

    def pck_crl(self, revoked: tuple[int, ...] = (), *, next_update: dt.datetime = NOT_AFTER) -> bytes:
        return _crl(self.platform_ca.subject, self.ca_key, revoked, next_update)


def _crl(
    issuer: x509.Name, key: ec.EllipticCurvePrivateKey, revoked: tuple[int, ...], next_update: dt.datetime
) -> bytes:
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer)
    builder = builder.last_update(NOT_BEFORE).next_update(next_update)
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOT_BEFORE).build()
        )
    algorithm = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


# -- AMD-like -------------------------------------------------------------------------------------------------------
def _amd_int(oid: str, value: int) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), der.encode_int(value))


class SimulatedAmdPki:
    """ARK → ASK → VCEK for one product, signing SEV-SNP reports; the VCEK carries the TCB it was issued for.

    ``vlek=True``: ARK → ASVK → VLEK instead (a key the cloud provider loaded; no chip ID in the certificate).
    """

    def __init__(
        self,
        label: str = "amd",
        *,
        product: str = "Milan",
        reported_tcb: int = 0x4405000000000002,
        vlek: bool = False,
    ) -> None:
        self.product = product
        self.vlek = vlek
        org = "pytest-tee simulation"
        self.ark_key = derived_key(f"{label} ARK {product}", ec.SECP384R1())
        self.ask_key = derived_key(f"{label} ASK {product}", ec.SECP384R1())
        self.vcek_key = derived_key(f"{label} VCEK {product}", ec.SECP384R1())
        ark_name = _name(f"ARK-{product}", org)
        ask_name = _name(f"SEV-VLEK-{product}" if vlek else f"SEV-{product}", org)
        self.ark = make_cert(ark_name, self.ark_key, ark_name, self.ark_key, serial=0x100, ca=True)
        self.ask = make_cert(ask_name, self.ask_key, ark_name, self.ark_key, serial=0x101, ca=True)
        self.reported_tcb = reported_tcb
        self.chip_id = hashlib.sha512(f"{label} chip".encode()).digest()
        self.vcek = self.make_vcek(reported_tcb)

    def make_vcek(self, tcb: int, chip_id: bytes | None = None) -> x509.Certificate:
        parts = tcb.to_bytes(8, "little")
        extensions: tuple[x509.UnrecognizedExtension, ...] = (
            _amd_int(f"{AMD_OID}.1", 0),
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(f"{AMD_OID}.2"), der.encode(der.IA5STRING, f"{self.product}-B0".encode())
            ),
            _amd_int(f"{AMD_OID}.3.1", parts[0]),
            _amd_int(f"{AMD_OID}.3.2", parts[1]),
            _amd_int(f"{AMD_OID}.3.3", parts[6]),
            _amd_int(f"{AMD_OID}.3.8", parts[7]),
        )
        if not self.vlek:
            hwid = x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{AMD_OID}.4"), chip_id or self.chip_id)
            extensions = (*extensions, hwid)
        return make_cert(
            _name("SEV-VLEK" if self.vlek else "SEV-VCEK", "pytest-tee simulation"),
            self.vcek_key,
            self.ask.subject,
            self.ask_key,
            serial=0x200,
            ca=False,
            not_after=LEAF_NOT_AFTER,
            extensions=extensions,
        )

    @property
    def anchors(self) -> TrustAnchors:
        return SIMULATED_AMD_ANCHORS

    def sign_report(self, report: SnpReport) -> SnpReport:
        unsigned = replace(
            report,
            reported_tcb=self.reported_tcb,
            chip_id=bytes(64) if self.vlek else self.chip_id,
            signature=bytes(512),
            key_info=(1 if self.vlek else 0) << 2,  # SIGNING_KEY: 0 VCEK, 1 VLEK
        )
        blob = unsigned.to_bytes()
        r, s = utils.decode_dss_signature(self.vcek_key.sign(blob[:SNP_SIGNED_SIZE], ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(72, "little") + s.to_bytes(72, "little") + bytes(512 - 144)
        return replace(unsigned, signature=signature)

    def crl(self, revoked: tuple[int, ...] = ()) -> bytes:
        """AMD's per-product CRL (as KDS serves it, DER), signed by the ARK."""
        return _crl(self.ark.subject, self.ark_key, revoked, NOT_AFTER)

    def cert_table(self, *, vcek: bool = True, ask: bool = True, ark: bool = True) -> bytes:
        """An extended-report certificate table (the configfs-tsm ``auxblob``)."""
        entries: list[tuple[uuid.UUID, bytes]] = []
        if vcek:
            entries.append((GUID_VLEK if self.vlek else GUID_VCEK, self.vcek.public_bytes(serialization.Encoding.DER)))
        if ask:
            entries.append((GUID_ASK, self.ask.public_bytes(serialization.Encoding.DER)))
        if ark:
            entries.append((GUID_ARK, self.ark.public_bytes(serialization.Encoding.DER)))
        return build_cert_table(entries)


def build_cert_table(entries: list[tuple[uuid.UUID, bytes]]) -> bytes:
    header_size = 24 * (len(entries) + 1)
    header, body, offset = bytearray(), bytearray(), header_size
    for guid, blob in entries:
        header += guid.bytes_le + struct.pack("<II", offset, len(blob))
        body += blob
        offset += len(blob)
    header += bytes(24)
    return bytes(header + body)


def _amd_anchors() -> TrustAnchors:
    pki = SimulatedAmdPki()
    chains = {pki.product: (pem(pki.ask), pem(pki.ark))}
    return TrustAnchors(
        intel_root_spki=b"",
        amd_ark_spki_sha256={pki.product: spki_sha256(pki.ark.public_key())},
        amd_product_chains=chains,
        name="simulated roots",
    )


SIMULATED_AMD_ANCHORS = _amd_anchors()


def _simulated_anchors() -> TrustAnchors:
    return SimulatedIntelPki().anchors


SIMULATED_ANCHORS = _simulated_anchors()


__all__: list[str] = [
    "SIMULATED_ANCHORS",
    "PckTcb",
    "SimulatedAmdPki",
    "SimulatedIntelPki",
    "build_cert_table",
]
