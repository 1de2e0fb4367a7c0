"""Intel TDX evidence: the TDREPORT (1024 bytes, from ``/dev/tdx_guest``) and the TD quote (v4, v5).

Offsets: TDREPORT_STRUCT per the kernel's ``TDREPORT_*`` enum and Canonical's tdx-tools; the quote per Intel
DCAP's TD quote layout as implemented by google/go-tdx-guest (see ``docs/attestation.md``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pytest_tee.attestation.formats import BlobReader, EvidenceFormatError, Layout, bits_set, le_bytes, u16, u32
from pytest_tee.attestation.formats import write_fields as _write_fields

TDX_TEE_TYPE = 0x81
TDREPORT_SIZE = 1024
REPORT_DATA_SIZE = 64
MEASUREMENT_SIZE = 48  # SHA-384
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
ATT_KEY_TYPE_ECDSA_P256 = 2

# TD ATTRIBUTES (TDINFO_STRUCT.ATTRIBUTES, 64 bits); names as in arch/x86/include/asm/shared/tdx.h.
TD_ATTRIBUTE_BITS: dict[int, str] = {
    0: "DEBUG",
    4: "HGS_PLUS_PROF",
    5: "PERF_PROF",
    6: "PMT_PROF",
    16: "ICSSD",
    27: "LASS",
    28: "SEPT_VE_DISABLE",
    29: "MIGRATABLE",
    30: "PKS",
    31: "KL",
    62: "TPA",
    63: "PERFMON",
}
TD_ATTRIBUTE_MASKS: dict[str, int] = {name: 1 << bit for bit, name in TD_ATTRIBUTE_BITS.items()}

# XFAM: the XSAVE feature components (XCR0 | IA32_XSS bit numbers) the TD may enable.
XFAM_BITS: dict[int, str] = {
    0: "X87",
    1: "SSE",
    2: "AVX",
    3: "MPX_BNDREGS",
    4: "MPX_BNDCSR",
    5: "AVX512_OPMASK",
    6: "AVX512_ZMM_HI256",
    7: "AVX512_HI16_ZMM",
    8: "PT",
    9: "PKRU",
    10: "PASID",
    11: "CET_U",
    12: "CET_S",
    13: "HDC",
    14: "UINTR",
    15: "LBR",
    16: "HWP",
    17: "AMX_TILECFG",
    18: "AMX_TILEDATA",
    19: "APX",
}
XFAM_AMX_MASK = 0x60000  # the TDX module requires both XTILECFG and XTILEDATA for AMX
XFAM_AVX512_MASK = 0xE0


@dataclass(frozen=True)
class TdAttributes:
    """The 64-bit TD ATTRIBUTES field decoded into named bits."""

    value: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> TdAttributes:
        return cls(int.from_bytes(raw, "little"))

    def to_bytes(self) -> bytes:
        return le_bytes(self.value, 8)

    def has(self, name: str) -> bool:
        return bool(self.value & TD_ATTRIBUTE_MASKS[name])

    @property
    def flags(self) -> list[str]:
        return [TD_ATTRIBUTE_BITS.get(bit, f"BIT{bit}") for bit in bits_set(self.value)]

    @property
    def debug(self) -> bool:
        return self.has("DEBUG")

    @property
    def perfmon(self) -> bool:
        return self.has("PERFMON")

    def to_dict(self) -> dict[str, Any]:
        return {
            "hex": self.to_bytes().hex(),
            "value": f"0x{self.value:x}",
            "flags": self.flags,
            "debug": self.debug,
            "sept_ve_disable": self.has("SEPT_VE_DISABLE"),
            "pks": self.has("PKS"),
            "perfmon": self.perfmon,
        }


@dataclass(frozen=True)
class Xfam:
    """The 64-bit XFAM field decoded: which XSAVE features (AVX-512, AMX, …) the TD was allowed to use."""

    value: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Xfam:
        return cls(int.from_bytes(raw, "little"))

    def to_bytes(self) -> bytes:
        return le_bytes(self.value, 8)

    @property
    def features(self) -> list[str]:
        return [XFAM_BITS.get(bit, f"BIT{bit}") for bit in bits_set(self.value)]

    @property
    def amx(self) -> bool:
        return self.value & XFAM_AMX_MASK == XFAM_AMX_MASK

    @property
    def avx512(self) -> bool:
        return self.value & XFAM_AVX512_MASK == XFAM_AVX512_MASK

    def to_dict(self) -> dict[str, Any]:
        return {
            "hex": self.to_bytes().hex(),
            "value": f"0x{self.value:x}",
            "features": self.features,
            "amx": self.amx,
            "avx512": self.avx512,
        }


# Fields a TDREPORT and a quote body share (the TD's identity as the TDX module reports it).
TD_IDENTITY_FIELDS = (
    "tee_tcb_svn",
    "mrseam",
    "mrsignerseam",
    "seam_attributes",
    "td_attributes",
    "xfam",
    "mrtd",
    "mrconfigid",
    "mrowner",
    "mrownerconfig",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "report_data",
)

TDREPORT_LAYOUT: Layout = (
    # REPORTMACSTRUCT (0..255, MAC-protected)
    ("CPUSVN", "cpusvn", 16, 16),
    ("TEE_TCB_INFO_HASH", "tee_tcb_info_hash", 32, 48),
    ("TEE_INFO_HASH", "tee_info_hash", 80, 48),
    ("REPORTDATA", "report_data", 128, 64),
    ("MAC", "mac", 224, 32),
    # TEE_TCB_INFO (256..494)
    ("TEE_TCB_INFO.VALID", "tee_tcb_valid", 256, 8),
    ("TEE_TCB_SVN", "tee_tcb_svn", 264, 16),
    ("MRSEAM", "mrseam", 280, 48),
    ("MRSIGNERSEAM", "mrsignerseam", 328, 48),
    ("SEAM ATTRIBUTES", "seam_attributes", 376, 8),
    ("TEE_TCB_SVN2", "tee_tcb_svn2", 384, 16),
    # TDINFO_STRUCT (512..1023)
    ("TD ATTRIBUTES", "td_attributes", 512, 8),
    ("XFAM", "xfam", 520, 8),
    ("MRTD", "mrtd", 528, 48),
    ("MRCONFIGID", "mrconfigid", 576, 48),
    ("MROWNER", "mrowner", 624, 48),
    ("MROWNERCONFIG", "mrownerconfig", 672, 48),
    ("RTMR0", "rtmr0", 720, 48),
    ("RTMR1", "rtmr1", 768, 48),
    ("RTMR2", "rtmr2", 816, 48),
    ("RTMR3", "rtmr3", 864, 48),
    ("SERVTD_HASH", "servtd_hash", 912, 48),
)

QUOTE_HEADER_SIZE = 48
QUOTE_V4_BODY_OFFSET = 0x30
QUOTE_V5_DESCRIPTOR_OFFSET = 0x30
QUOTE_V5_BODY_OFFSET = 0x36
BODY_TYPE_TDX10 = 2
BODY_TYPE_TDX15 = 3
BODY_SIZES = {BODY_TYPE_TDX10: 584, BODY_TYPE_TDX15: 648}
SIGNATURE_SIZE = 64
ATTESTATION_KEY_SIZE = 64
CERT_DATA_HEADER_SIZE = 6  # u16 type, u32 size

QUOTE_BODY_LAYOUT: Layout = (
    ("TEE_TCB_SVN", "tee_tcb_svn", 0x000, 16),
    ("MRSEAM", "mrseam", 0x010, 48),
    ("MRSIGNERSEAM", "mrsignerseam", 0x040, 48),
    ("SEAMATTRIBUTES", "seam_attributes", 0x070, 8),
    ("TDATTRIBUTES", "td_attributes", 0x078, 8),
    ("XFAM", "xfam", 0x080, 8),
    ("MRTD", "mrtd", 0x088, 48),
    ("MRCONFIGID", "mrconfigid", 0x0B8, 48),
    ("MROWNER", "mrowner", 0x0E8, 48),
    ("MROWNERCONFIG", "mrownerconfig", 0x118, 48),
    ("RTMR0", "rtmr0", 0x148, 48),
    ("RTMR1", "rtmr1", 0x178, 48),
    ("RTMR2", "rtmr2", 0x1A8, 48),
    ("RTMR3", "rtmr3", 0x1D8, 48),
    ("REPORTDATA", "report_data", 0x208, 64),
)
QUOTE_BODY15_LAYOUT: Layout = (
    ("TEE_TCB_SVN2", "tee_tcb_svn2", 0x248, 16),
    ("MRSERVICETD", "mrservicetd", 0x258, 48),
)


def _identity_dict(record: Any) -> dict[str, Any]:
    return {
        "td_attributes": record.td_attributes.to_dict(),
        "xfam": record.xfam.to_dict(),
        "mrtd": record.mrtd.hex(),
        "mrconfigid": record.mrconfigid.hex(),
        "mrowner": record.mrowner.hex(),
        "mrownerconfig": record.mrownerconfig.hex(),
        "rtmr0": record.rtmr0.hex(),
        "rtmr1": record.rtmr1.hex(),
        "rtmr2": record.rtmr2.hex(),
        "rtmr3": record.rtmr3.hex(),
        "report_data": record.report_data.hex(),
        "tee_tcb_svn": record.tee_tcb_svn.hex(),
        "mrseam": record.mrseam.hex(),
        "mrsignerseam": record.mrsignerseam.hex(),
        "seam_attributes": record.seam_attributes.hex(),
    }


def _layout_values(record: Any, layout: Layout) -> dict[str, bytes]:
    values = {}
    for _, attr, _, _ in layout:
        value = getattr(record, attr)
        values[attr] = value.to_bytes() if isinstance(value, (TdAttributes, Xfam)) else value
    return values


@dataclass
class TdReport:
    """TDREPORT_STRUCT: what ``TDG.MR.REPORT`` returns inside a TD; MAC-protected, checkable only on that host."""

    kind: ClassVar[str] = "tdx-tdreport"

    report_type: int  # 0x81 = TDX
    report_subtype: int
    report_version: int
    cpusvn: bytes
    tee_tcb_info_hash: bytes
    tee_info_hash: bytes
    report_data: bytes
    mac: bytes
    tee_tcb_valid: bytes
    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    tee_tcb_svn2: bytes
    td_attributes: TdAttributes
    xfam: Xfam
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    servtd_hash: bytes

    @property
    def tee_type(self) -> int:
        return self.report_type

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)

    @property
    def format(self) -> str:
        return f"TDREPORT (type 0x{self.report_type:02x}, version {self.report_version})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": TDREPORT_SIZE,
            "report_type": f"0x{self.report_type:02x}",
            "report_subtype": self.report_subtype,
            "report_version": self.report_version,
            "tee_type": f"0x{self.report_type:02x}",
            **_identity_dict(self),
            "cpusvn": self.cpusvn.hex(),
            "tee_tcb_info_hash": self.tee_tcb_info_hash.hex(),
            "tee_info_hash": self.tee_info_hash.hex(),
            "mac": self.mac.hex(),
            "tee_tcb_valid": self.tee_tcb_valid.hex(),
            "tee_tcb_svn2": self.tee_tcb_svn2.hex(),
            "servtd_hash": self.servtd_hash.hex(),
        }

    def to_bytes(self) -> bytes:
        """Re-encode (reserved bytes as zeros)."""
        buffer = bytearray(TDREPORT_SIZE)
        buffer[0:4] = bytes([self.report_type, self.report_subtype, self.report_version, 0])
        _write_fields(buffer, TDREPORT_LAYOUT, _layout_values(self, TDREPORT_LAYOUT))
        return bytes(buffer)


def parse_tdreport(blob: bytes) -> TdReport:
    """Parse a 1024-byte TDREPORT_STRUCT (as returned by ``TDX_CMD_GET_REPORT0``)."""
    reader = BlobReader(blob, "TDREPORT")
    report_type = reader.take("REPORTTYPE", 0, 4)
    values = reader.fields(TDREPORT_LAYOUT)
    reader.expect_size(TDREPORT_SIZE)
    if report_type[0] != TDX_TEE_TYPE:
        raise reader.error(
            f"REPORTTYPE.TYPE at offset 0 is 0x{report_type[0]:02x}, expected 0x81 (TDX): not a TDX TDREPORT"
        )
    return TdReport(
        report_type=report_type[0],
        report_subtype=report_type[1],
        report_version=report_type[2],
        td_attributes=TdAttributes.from_bytes(values.pop("td_attributes")),
        xfam=Xfam.from_bytes(values.pop("xfam")),
        **values,
    )


@dataclass
class TdQuote:
    """An Intel TD quote (v4, or v5 with a TDX 1.0 or 1.5 body): the TD's identity signed by the Quoting Enclave."""

    kind: ClassVar[str] = "tdx-quote"

    version: int
    att_key_type: int
    tee_type: int
    header_reserved: bytes  # 4 bytes after TEE type (go-tdx-guest reads them as QE/PCE SVN)
    qe_vendor_id: bytes
    user_data: bytes
    body_type: int  # 2 = TDX 1.0 body (all v4 quotes), 3 = TDX 1.5 body
    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: TdAttributes
    xfam: Xfam
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    report_data: bytes
    signature: bytes
    attestation_key: bytes
    certification_data_type: int
    certification_data: bytes = field(repr=False)
    tee_tcb_svn2: bytes | None = None  # body type 3 only
    mrservicetd: bytes | None = None  # body type 3 only
    trailing: bytes = field(default=b"", repr=False)  # bytes after the signed data (kept for re-encoding)

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)

    @property
    def body_size(self) -> int:
        return BODY_SIZES[self.body_type]

    @property
    def body_offset(self) -> int:
        return QUOTE_V4_BODY_OFFSET if self.version == 4 else QUOTE_V5_BODY_OFFSET

    @property
    def signed_data_size(self) -> int:
        return SIGNATURE_SIZE + ATTESTATION_KEY_SIZE + CERT_DATA_HEADER_SIZE + len(self.certification_data)

    @property
    def size(self) -> int:
        return self.body_offset + self.body_size + 4 + self.signed_data_size + len(self.trailing)

    @property
    def qe_vendor(self) -> str:
        return "Intel" if self.qe_vendor_id == INTEL_QE_VENDOR_ID else "unknown"

    @property
    def format(self) -> str:
        body = "TDX 1.5 body" if self.body_type == BODY_TYPE_TDX15 else "TDX 1.0 body"
        return f"TD quote v{self.version} ({body})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "size": self.size,
            "version": self.version,
            "att_key_type": self.att_key_type,
            "tee_type": f"0x{self.tee_type:08x}",
            "qe_vendor_id": self.qe_vendor_id.hex(),
            "qe_vendor": self.qe_vendor,
            "header_reserved": self.header_reserved.hex(),
            "user_data": self.user_data.hex(),
            "body_type": self.body_type,
            "body_size": self.body_size,
            **_identity_dict(self),
            "tee_tcb_svn2": None if self.tee_tcb_svn2 is None else self.tee_tcb_svn2.hex(),
            "mrservicetd": None if self.mrservicetd is None else self.mrservicetd.hex(),
            "signed_data_size": self.signed_data_size,
            "signature": self.signature.hex(),
            "attestation_key": self.attestation_key.hex(),
            "certification_data_type": self.certification_data_type,
            "certification_data_size": len(self.certification_data),
            "certification_data_sha256": hashlib.sha256(self.certification_data).hexdigest(),
            "trailing_bytes": len(self.trailing),
        }

    def to_bytes(self) -> bytes:
        header = (
            u16(self.version)
            + u16(self.att_key_type)
            + u32(self.tee_type)
            + self.header_reserved
            + self.qe_vendor_id
            + self.user_data
        )
        if len(header) != QUOTE_HEADER_SIZE:
            raise ValueError(f"quote header must be {QUOTE_HEADER_SIZE} bytes, got {len(header)}")
        body = bytearray(self.body_size)
        _write_fields(body, QUOTE_BODY_LAYOUT, _layout_values(self, QUOTE_BODY_LAYOUT))
        if self.body_type == BODY_TYPE_TDX15:
            _write_fields(body, QUOTE_BODY15_LAYOUT, _layout_values(self, QUOTE_BODY15_LAYOUT))
        descriptor = b"" if self.version == 4 else u16(self.body_type) + u32(self.body_size)
        signed = (
            self.signature
            + self.attestation_key
            + u16(self.certification_data_type)
            + u32(len(self.certification_data))
            + self.certification_data
        )
        return header + descriptor + bytes(body) + u32(len(signed)) + signed + self.trailing


def parse_quote(blob: bytes) -> TdQuote:
    """Parse a TD quote: v4 (body at 0x30) or v5 (body descriptor at 0x30, body type 2 or 3 at 0x36)."""
    reader = BlobReader(blob, "TD quote")
    version = reader.uint("version", 0x00, 2)
    att_key_type = reader.uint("attestation key type", 0x02, 2)
    tee_type = reader.uint("TEE type", 0x04, 4)
    header_reserved = reader.take("header reserved", 0x08, 4)
    qe_vendor_id = reader.take("QE vendor ID", 0x0C, 16)
    user_data = reader.take("user data", 0x1C, 20)
    if version not in (4, 5):
        raise reader.error(f"version at offset 0 is {version}, expected 4 or 5 (a TDX quote)")
    if tee_type != TDX_TEE_TYPE:
        kind = "an SGX quote" if tee_type == 0 else "not a TDX quote"
        raise reader.error(f"TEE type at offset 4 is 0x{tee_type:08x}, expected 0x00000081 (TDX): {kind}")

    if version == 4:
        body_type, body_offset = BODY_TYPE_TDX10, QUOTE_V4_BODY_OFFSET
    else:
        body_type = reader.uint("body type", QUOTE_V5_DESCRIPTOR_OFFSET, 2)
        body_size = reader.uint("body size", QUOTE_V5_DESCRIPTOR_OFFSET + 2, 4)
        if body_type not in BODY_SIZES:
            raise reader.error(
                f"body type at offset 0x30 is {body_type}, expected 2 (TDX 1.0) or 3 (TDX 1.5)"
                + (" — type 1 is an SGX enclave report" if body_type == 1 else "")
            )
        if body_size != BODY_SIZES[body_type]:
            raise reader.error(
                f"body size at offset 0x32 is {body_size}, expected {BODY_SIZES[body_type]} for body type {body_type}"
            )
        body_offset = QUOTE_V5_BODY_OFFSET

    values = reader.fields(QUOTE_BODY_LAYOUT, base=body_offset)
    extra = reader.fields(QUOTE_BODY15_LAYOUT, base=body_offset) if body_type == BODY_TYPE_TDX15 else {}
    signed_offset = body_offset + BODY_SIZES[body_type]
    signed_size = reader.uint("signed data size", signed_offset, 4)
    signed_start = signed_offset + 4
    reader.take("signed data", signed_start, signed_size)
    minimum = SIGNATURE_SIZE + ATTESTATION_KEY_SIZE + CERT_DATA_HEADER_SIZE
    if signed_size < minimum:
        raise reader.error(
            f"signed data size at offset {signed_offset} (0x{signed_offset:X}) is {signed_size}, "
            f"less than the {minimum} bytes of signature, attestation key and certification data header"
        )
    signature = reader.take("ECDSA signature", signed_start, SIGNATURE_SIZE)
    attestation_key = reader.take("attestation key", signed_start + SIGNATURE_SIZE, ATTESTATION_KEY_SIZE)
    cert_offset = signed_start + SIGNATURE_SIZE + ATTESTATION_KEY_SIZE
    cert_type = reader.uint("certification data type", cert_offset, 2)
    cert_size = reader.uint("certification data size", cert_offset + 2, 4)
    if cert_size != signed_size - minimum:
        raise reader.error(
            f"certification data size at offset {cert_offset + 2} (0x{cert_offset + 2:X}) is {cert_size}, "
            f"but the signed data leaves {signed_size - minimum} bytes for it"
        )
    certification_data = reader.take("certification data", cert_offset + CERT_DATA_HEADER_SIZE, cert_size)
    end = signed_start + signed_size
    return TdQuote(
        version=version,
        att_key_type=att_key_type,
        tee_type=tee_type,
        header_reserved=header_reserved,
        qe_vendor_id=qe_vendor_id,
        user_data=user_data,
        body_type=body_type,
        td_attributes=TdAttributes.from_bytes(values.pop("td_attributes")),
        xfam=Xfam.from_bytes(values.pop("xfam")),
        **values,
        **extra,
        signature=signature,
        attestation_key=attestation_key,
        certification_data_type=cert_type,
        certification_data=certification_data,
        trailing=reader.blob[end:],
    )


SIMULATED_CERTIFICATION_DATA = b"pytest-tee simulated quote: not signed by any Quoting Enclave"


def quote_from_tdreport(report: TdReport, *, version: int = 4) -> TdQuote:
    """A structurally valid, *unsigned* quote carrying a TDREPORT's identity (what a QE would sign).

    For simulations and tests only: the signature and key are zeros and the certification data says so, so any
    real quote verifier rejects it.
    """
    if version not in (4, 5):
        raise ValueError("version must be 4 or 5")
    body_type = BODY_TYPE_TDX15 if version == 5 else BODY_TYPE_TDX10
    identity = {name: getattr(report, name) for name in TD_IDENTITY_FIELDS}
    return TdQuote(
        version=version,
        att_key_type=ATT_KEY_TYPE_ECDSA_P256,
        tee_type=TDX_TEE_TYPE,
        header_reserved=bytes(4),
        qe_vendor_id=INTEL_QE_VENDOR_ID,
        user_data=bytes(20),
        body_type=body_type,
        **identity,
        tee_tcb_svn2=report.tee_tcb_svn2 if body_type == BODY_TYPE_TDX15 else None,
        mrservicetd=report.servtd_hash if body_type == BODY_TYPE_TDX15 else None,
        signature=bytes(SIGNATURE_SIZE),
        attestation_key=bytes(ATTESTATION_KEY_SIZE),
        certification_data_type=6,
        certification_data=SIMULATED_CERTIFICATION_DATA,
    )


def tdreport_from_quote(quote: TdQuote, *, report_data: bytes | None = None) -> TdReport:
    """The TDREPORT a TD with this quote's identity would produce (for simulations: MAC and hashes are zeros)."""
    identity = {name: getattr(quote, name) for name in TD_IDENTITY_FIELDS}
    if report_data is not None:
        identity["report_data"] = report_data
    return TdReport(
        report_type=TDX_TEE_TYPE,
        report_subtype=0,
        report_version=1 if quote.body_type == BODY_TYPE_TDX15 else 0,
        cpusvn=bytes(16),
        tee_tcb_info_hash=bytes(48),
        tee_info_hash=bytes(48),
        mac=bytes(32),
        tee_tcb_valid=bytes.fromhex("ff01030000000000" if quote.body_type == BODY_TYPE_TDX15 else "ff01000000000000"),
        tee_tcb_svn2=quote.tee_tcb_svn2 or bytes(16),
        servtd_hash=quote.mrservicetd or bytes(48),
        **identity,
    )


def with_report_data(record: TdReport | TdQuote, report_data: bytes) -> Any:
    if len(report_data) != REPORT_DATA_SIZE:
        raise ValueError(f"REPORTDATA must be {REPORT_DATA_SIZE} bytes, got {len(report_data)}")
    return replace(record, report_data=report_data)


def identity_differences(a: TdReport | TdQuote, b: TdReport | TdQuote) -> list[str]:
    """Names of the TD identity fields (MRTD, RTMRs, attributes, …) on which two TDX records disagree."""
    return [name for name in TD_IDENTITY_FIELDS if name != "report_data" and getattr(a, name) != getattr(b, name)]


def looks_like_tdreport(blob: bytes) -> bool:
    return len(blob) == TDREPORT_SIZE and blob[0] == TDX_TEE_TYPE


def looks_like_quote(blob: bytes) -> bool:
    return (
        # Only the first 8 bytes decide, so that a truncated quote is parsed as one and named precisely.
        len(blob) >= 8
        and int.from_bytes(blob[0:2], "little") in (4, 5)
        and int.from_bytes(blob[4:8], "little") == TDX_TEE_TYPE
    )


__all__ = [
    "TD_ATTRIBUTE_BITS",
    "XFAM_BITS",
    "EvidenceFormatError",
    "TdAttributes",
    "TdQuote",
    "TdReport",
    "Xfam",
    "parse_quote",
    "parse_tdreport",
]
