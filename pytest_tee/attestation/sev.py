"""AMD SEV-SNP evidence: the 1184-byte ATTESTATION_REPORT (configfs-tsm provider ``sev_guest``, ``/dev/sev-guest``).

Offsets per AMD's SEV-SNP firmware ABI as implemented by virtee/sev (``snp.rs``); see ``docs/attestation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_tee.attestation.formats import BlobReader, Layout, bits_set, le_bytes, write_fields

SNP_REPORT_SIZE = 0x4A0  # 1184
SNP_KNOWN_VERSIONS = (2, 3, 4, 5)
# /dev/sev-guest answers with MSG_REPORT_RSP: u32 status, u32 report_size, 24 reserved bytes, then the report.
SNP_MSG_REPORT_RSP_HEADER = 0x20

SNP_POLICY_BITS: dict[int, str] = {
    16: "SMT",
    17: "RESERVED_MBO",  # must be one
    18: "MIGRATE_MA",
    19: "DEBUG",
    20: "SINGLE_SOCKET",
    21: "CXL_ALLOW",
    22: "MEM_AES_256_XTS",
    23: "RAPL_DIS",
    24: "CIPHERTEXT_HIDING",
    25: "PAGE_SWAP_DISABLE",
}
SNP_PLATFORM_INFO_BITS: dict[int, str] = {
    0: "SMT_EN",
    1: "TSME_EN",
    2: "ECC_EN",
    3: "RAPL_DIS",
    4: "CIPHERTEXT_HIDING_EN",
    5: "ALIAS_CHECK_COMPLETE",
}
SNP_POLICY_DEBUG = 1 << 19

SNP_LAYOUT: Layout = (
    ("VERSION", "version", 0x000, 4),
    ("GUEST_SVN", "guest_svn", 0x004, 4),
    ("POLICY", "policy", 0x008, 8),
    ("FAMILY_ID", "family_id", 0x010, 16),
    ("IMAGE_ID", "image_id", 0x020, 16),
    ("VMPL", "vmpl", 0x030, 4),
    ("SIGNATURE_ALGO", "signature_algo", 0x034, 4),
    ("CURRENT_TCB", "current_tcb", 0x038, 8),
    ("PLATFORM_INFO", "platform_info", 0x040, 8),
    ("KEY_INFO", "key_info", 0x048, 4),
    ("REPORT_DATA", "report_data", 0x050, 64),
    ("MEASUREMENT", "measurement", 0x090, 48),
    ("HOST_DATA", "host_data", 0x0C0, 32),
    ("ID_KEY_DIGEST", "id_key_digest", 0x0E0, 48),
    ("AUTHOR_KEY_DIGEST", "author_key_digest", 0x110, 48),
    ("REPORT_ID", "report_id", 0x140, 32),
    ("REPORT_ID_MA", "report_id_ma", 0x160, 32),
    ("REPORTED_TCB", "reported_tcb", 0x180, 8),
    ("CPUID_FAM_ID", "cpuid_fam_id", 0x188, 1),
    ("CPUID_MOD_ID", "cpuid_mod_id", 0x189, 1),
    ("CPUID_STEP", "cpuid_step", 0x18A, 1),
    ("CHIP_ID", "chip_id", 0x1A0, 64),
    ("COMMITTED_TCB", "committed_tcb", 0x1E0, 8),
    ("CURRENT_BUILD", "current_build", 0x1E8, 1),
    ("CURRENT_MINOR", "current_minor", 0x1E9, 1),
    ("CURRENT_MAJOR", "current_major", 0x1EA, 1),
    ("COMMITTED_BUILD", "committed_build", 0x1EC, 1),
    ("COMMITTED_MINOR", "committed_minor", 0x1ED, 1),
    ("COMMITTED_MAJOR", "committed_major", 0x1EE, 1),
    ("LAUNCH_TCB", "launch_tcb", 0x1F0, 8),
    ("SIGNATURE", "signature", 0x2A0, 512),
)
_INTEGER_FIELDS = {
    attr: size
    for _, attr, _, size in SNP_LAYOUT
    if attr
    in {
        "version",
        "guest_svn",
        "policy",
        "vmpl",
        "signature_algo",
        "current_tcb",
        "platform_info",
        "key_info",
        "reported_tcb",
        "cpuid_fam_id",
        "cpuid_mod_id",
        "cpuid_step",
        "committed_tcb",
        "current_build",
        "current_minor",
        "current_major",
        "committed_build",
        "committed_minor",
        "committed_major",
        "launch_tcb",
    }
}


def decode_bits(value: int, names: dict[int, str]) -> list[str]:
    return [names.get(bit, f"BIT{bit}") for bit in bits_set(value)]


@dataclass
class SnpReport:
    """An SEV-SNP ATTESTATION_REPORT, signed by the chip's VCEK (ECDSA P-384 over bytes 0..0x29F)."""

    kind: ClassVar[str] = "sev-snp-report"

    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: int
    platform_info: int
    key_info: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: int
    chip_id: bytes
    committed_tcb: int
    launch_tcb: int
    signature: bytes = field(repr=False)
    cpuid_fam_id: int = 0
    cpuid_mod_id: int = 0
    cpuid_step: int = 0
    current_build: int = 0
    current_minor: int = 0
    current_major: int = 0
    committed_build: int = 0
    committed_minor: int = 0
    committed_major: int = 0

    @property
    def debug(self) -> bool:
        return bool(self.policy & SNP_POLICY_DEBUG)

    @property
    def policy_flags(self) -> list[str]:
        return decode_bits(self.policy & ~0xFFFF, SNP_POLICY_BITS)

    @property
    def format(self) -> str:
        return f"SEV-SNP report v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": SNP_REPORT_SIZE,
            "version": self.version,
            "guest_svn": self.guest_svn,
            "policy": {
                "value": f"0x{self.policy:x}",
                "abi_major": self.policy >> 8 & 0xFF,
                "abi_minor": self.policy & 0xFF,
                "flags": self.policy_flags,
                "debug": self.debug,
                "smt": bool(self.policy & 1 << 16),
                "migrate_ma": bool(self.policy & 1 << 18),
                "single_socket": bool(self.policy & 1 << 20),
            },
            "vmpl": self.vmpl,
            "signature_algo": self.signature_algo,
            "platform_info": {
                "value": f"0x{self.platform_info:x}",
                "flags": decode_bits(self.platform_info, SNP_PLATFORM_INFO_BITS),
            },
            "key_info": f"0x{self.key_info:x}",
            "report_data": self.report_data.hex(),
            "measurement": self.measurement.hex(),
            "host_data": self.host_data.hex(),
            "id_key_digest": self.id_key_digest.hex(),
            "author_key_digest": self.author_key_digest.hex(),
            "report_id": self.report_id.hex(),
            "report_id_ma": self.report_id_ma.hex(),
            "family_id": self.family_id.hex(),
            "image_id": self.image_id.hex(),
            "current_tcb": f"0x{self.current_tcb:016x}",
            "reported_tcb": f"0x{self.reported_tcb:016x}",
            "committed_tcb": f"0x{self.committed_tcb:016x}",
            "launch_tcb": f"0x{self.launch_tcb:016x}",
            "cpuid": {"family": self.cpuid_fam_id, "model": self.cpuid_mod_id, "stepping": self.cpuid_step},
            "firmware": {
                "current": f"{self.current_major}.{self.current_minor}.{self.current_build}",
                "committed": f"{self.committed_major}.{self.committed_minor}.{self.committed_build}",
            },
            "chip_id": self.chip_id.hex(),
            "signature": self.signature.hex(),
        }

    def to_bytes(self) -> bytes:
        """Re-encode (reserved bytes as zeros)."""
        values: dict[str, bytes] = {}
        for _, attr, _, size in SNP_LAYOUT:
            value = getattr(self, attr)
            values[attr] = le_bytes(value, size) if attr in _INTEGER_FIELDS else value
        buffer = bytearray(SNP_REPORT_SIZE)
        write_fields(buffer, SNP_LAYOUT, values)
        return bytes(buffer)


def unwrap_snp_response(blob: bytes) -> bytes:
    """The report inside a ``/dev/sev-guest`` MSG_REPORT_RSP, or the blob unchanged when it is a bare report."""
    if len(blob) >= SNP_MSG_REPORT_RSP_HEADER + SNP_REPORT_SIZE:
        status = int.from_bytes(blob[0:4], "little")
        size = int.from_bytes(blob[4:8], "little")
        if status == 0 and size == SNP_REPORT_SIZE:
            return blob[SNP_MSG_REPORT_RSP_HEADER : SNP_MSG_REPORT_RSP_HEADER + SNP_REPORT_SIZE]
    return blob


def parse_snp_report(blob: bytes) -> SnpReport:
    """Parse a 1184-byte SEV-SNP attestation report (a version in ``SNP_KNOWN_VERSIONS``)."""
    reader = BlobReader(blob, "SEV-SNP report")
    values: dict[str, Any] = reader.fields(SNP_LAYOUT)
    reader.expect_size(SNP_REPORT_SIZE)
    for attr in _INTEGER_FIELDS:
        values[attr] = int.from_bytes(values[attr], "little")
    if values["version"] not in SNP_KNOWN_VERSIONS:
        # The same versions auto-detection accepts: a reader given --kind sev-snp-report gets no more leeway.
        known = ", ".join(str(version) for version in SNP_KNOWN_VERSIONS)
        raise reader.error(f"VERSION at offset 0 is {values['version']}, expected one of {known}")
    if values["vmpl"] > 3:
        raise reader.error(f"VMPL at offset 0x30 is {values['vmpl']}, expected 0..3: not an SEV-SNP report")
    return SnpReport(**values)


def looks_like_snp_report(blob: bytes) -> bool:
    return len(blob) == SNP_REPORT_SIZE and int.from_bytes(blob[0:4], "little") in SNP_KNOWN_VERSIONS
