"""Certificate chains checked offline: each link's signature, each certificate's validity, the root against a pin.

Shared by the TDX (PCK → Platform/Processor CA → Intel SGX Root CA) and SEV-SNP (VCEK → ASK → ARK) verifiers.
Every check is a ``Step`` (pass / fail / note with a message) so that the command line can print one line each.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

PASS = "pass"
FAIL = "fail"
NOTE = "note"


@dataclass(frozen=True)
class Step:
    """One signature check: its name (``quote signature``, ``PCK chain``, …), outcome and what it found."""

    name: str
    outcome: str
    message: str

    @property
    def failed(self) -> bool:
        return self.outcome == FAIL


@dataclass(frozen=True)
class CertSummary:
    role: str  # "PCK", "Platform CA", "root", "VCEK", "ASK", "ARK", …
    subject: str
    issuer: str
    not_before: str
    not_after: str
    serial: str

    @classmethod
    def of(cls, role: str, cert: x509.Certificate) -> CertSummary:
        return cls(
            role=role,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            serial=f"{serial_of(cert):x}",
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class SignatureReport:
    """What the offline verification of one quote or report found."""

    steps: list[Step] = field(default_factory=list)
    chain: list[CertSummary] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # PCK extensions, VCEK TCB, TCB status, …

    def add(self, name: str, outcome: str, message: str) -> None:
        self.steps.append(Step(name, outcome, message))

    @property
    def ok(self) -> bool:
        return not any(step.failed for step in self.steps)

    def failed_steps(self) -> list[str]:
        return [step.name for step in self.steps if step.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": [asdict(step) for step in self.steps],
            "chain": [cert.to_dict() for cert in self.chain],
            "details": self.details,
        }


def public_key_of(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    """The certificate's key, or None when its algorithm is unknown (a damaged or exotic certificate)."""
    try:
        return cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None


def serial_of(cert: x509.Certificate) -> int:
    # AMD issues VCEKs with serial number 0, which cryptography warns about; it is not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return cert.serial_number


def load_der_certificate(data: bytes) -> x509.Certificate:
    """A DER certificate (``ValueError`` when it is not one), without the warning AMD's serial-0 VCEKs cause."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return x509.load_der_x509_certificate(data)
        except x509.InvalidVersion as exc:  # not a ValueError
            raise ValueError(str(exc)) from None


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def check_signature(issuer: x509.Certificate, cert: x509.Certificate) -> str | None:
    """None when ``issuer``'s key signed ``cert``; otherwise why not (ECDSA or RSA-PSS, as the vendors use)."""
    try:
        key = issuer.public_key()
        algorithm = cert.signature_hash_algorithm
        if isinstance(key, ec.EllipticCurvePublicKey):
            if algorithm is None:
                return "the certificate names no hash algorithm"
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            # AMD signs with RSASSA-PSS (SHA-384, salt 48); cryptography reports the PSS parameters it parsed.
            pss = cert.signature_algorithm_parameters
            if (isinstance(pss, padding.PSS) and algorithm is not None) or (
                isinstance(pss, padding.PKCS1v15) and algorithm is not None
            ):
                key.verify(cert.signature, cert.tbs_certificate_bytes, pss, algorithm)
            else:
                return "unsupported RSA signature parameters"
        else:
            return f"unsupported issuer key type {type(key).__name__}"
    except InvalidSignature:
        return "the signature does not verify under the issuer's key"
    except (UnsupportedAlgorithm, ValueError) as exc:
        return f"the signature cannot be checked: {exc}"
    if cert.issuer != issuer.subject:
        return f"issuer name {cert.issuer.rfc4514_string()} is not the signer's subject"
    return None


def verify_links(chain: Sequence[tuple[str, x509.Certificate]]) -> list[str]:
    """Problems with a leaf-first chain: each certificate signed by the next, the last one by itself."""
    problems = []
    for (role, cert), (issuer_role, issuer) in zip(chain, [*chain[1:], chain[-1]], strict=True):
        problem = check_signature(issuer, cert)
        if problem:
            signer = "itself" if cert is issuer else f"the {issuer_role}"
            problems.append(f"{role} ({common_name(cert.subject)}) not signed by {signer}: {problem}")
    # Every signer must be a CA: otherwise a leaf key (say, one extracted from a platform) could certify more.
    for role, cert in chain[1:]:
        if not is_ca(cert):
            problems.append(f"{role} ({common_name(cert.subject)}) signs certificates but is not a CA")
    return problems


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return False


def validity_problems(chain: Sequence[tuple[str, x509.Certificate]], at: dt.datetime) -> list[str]:
    problems = []
    for role, cert in chain:
        before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
        if at < before:
            problems.append(f"{role} ({common_name(cert.subject)}) is not valid before {before.isoformat()}")
        elif at > after:
            problems.append(f"{role} ({common_name(cert.subject)}) expired {after.isoformat()}")
    return problems


def check_chain(
    report: SignatureReport,
    chain: Sequence[tuple[str, x509.Certificate]],
    *,
    chain_name: str,
    root_trusted: Callable[[x509.Certificate], bool],
    root_label: str,
    at: dt.datetime,
) -> None:
    """Add the ``chain_name``, ``root pin`` and ``validity`` steps for a leaf-first chain."""
    report.chain.extend(CertSummary.of(role, cert) for role, cert in chain)
    path = " → ".join(common_name(cert.subject) for _, cert in chain)
    problems = verify_links(chain)
    if problems:
        report.add(chain_name, FAIL, "; ".join(problems))
    else:
        report.add(chain_name, PASS, f"each signature verifies: {path} (self-signed)")
    root = chain[-1][1]
    if root_trusted(root):
        report.add("root pin", PASS, f"the root's public key is the pinned {root_label}")
    else:
        report.add(
            "root pin",
            FAIL,
            f"the chain ends in {common_name(root.subject)!r} whose public key is not the pinned {root_label}: "
            "a self-made or unknown root",
        )
    late = validity_problems(chain, at)
    if late:
        report.add("validity", FAIL, f"at {at.isoformat()}: " + "; ".join(late))
    else:
        report.add("validity", PASS, f"every certificate is within its validity period at {at.isoformat()}")


def ecdsa_raw_verify(
    key: ec.EllipticCurvePublicKey, r: int, s: int, data: bytes, algorithm: hashes.HashAlgorithm
) -> bool:
    try:
        key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


def utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
