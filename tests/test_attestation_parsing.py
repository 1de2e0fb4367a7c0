"""Parsing TDX quotes (real samples, v4 and v5), TDREPORTs, SEV-SNP reports and GPU reports; malformed input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytest_tee.attestation.evidence import detect_kind, parse_evidence
from pytest_tee.attestation.formats import EvidenceFormatError
from pytest_tee.attestation.nvidia import build_fake_gpu_report, parse_nvidia_report
from pytest_tee.attestation.sev import SNP_REPORT_SIZE, SnpReport, parse_snp_report
from pytest_tee.attestation.tdx import (
    TDREPORT_SIZE,
    TdAttributes,
    TdQuote,
    TdReport,
    Xfam,
    parse_quote,
    parse_tdreport,
    quote_from_tdreport,
)
from pytest_tee.errors import InputError

# The real quotes live in the shared/ folder beside the repository; they are never copied into it.
TESTDATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "tdx").resolve()
INTEL_QE = "939a7233f79c4ca9940a0db3957f0607"

V4_EXPECTED = {
    "file": "tdx_prod_quote_SPR_E4.dat",
    "size": 4974,
    "version": 4,
    "body_type": 2,
    "td_attributes_hex": "0000004000000000",
    "td_attributes_value": 0x40000000,
    "td_attributes_flags": ["PKS"],
    "xfam_hex": "e71a060000000000",
    "xfam_value": 0x61AE7,
    "mrtd": "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb",
    "rtmr0": "2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a",
    "report_data": "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545"
    "eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113",
    "report_data_offset": 0x238,
}
V5_EXPECTED = {
    "file": "quote_v5_sample.dat",
    "size": 5006,
    "version": 5,
    "body_type": 3,
    "td_attributes_hex": "0000001000000000",
    "td_attributes_value": 0x10000000,
    "td_attributes_flags": ["SEPT_VE_DISABLE"],
    "xfam_hex": "e702060000000000",
    "xfam_value": 0x602E7,
    "mrtd": "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
    "rtmr0": "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619",
    "report_data": "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e"
    "094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a",
    "report_data_offset": 0x23E,
}


def read_sample(name: str) -> bytes:
    path = TESTDATA / name
    if not path.is_file():
        pytest.skip(f"real TDX quote sample {name} not found in {TESTDATA} (shared/testdata beside the repository)")
    return path.read_bytes()


def synthetic_tdreport(**changes: object) -> TdReport:
    """A TDREPORT whose every field holds a distinct byte pattern, so misplaced offsets show."""
    report = TdReport(
        report_type=0x81,
        report_subtype=0,
        report_version=1,
        cpusvn=bytes([1]) * 16,
        tee_tcb_info_hash=bytes([2]) * 48,
        tee_info_hash=bytes([3]) * 48,
        report_data=bytes(range(64)),
        mac=bytes([4]) * 32,
        tee_tcb_valid=bytes.fromhex("ff01030000000000"),
        tee_tcb_svn=bytes([5]) * 16,
        mrseam=bytes([6]) * 48,
        mrsignerseam=bytes([7]) * 48,
        seam_attributes=bytes(8),
        tee_tcb_svn2=bytes([8]) * 16,
        td_attributes=TdAttributes(0x10000000),
        xfam=Xfam(0x61AE7),
        mrtd=bytes([9]) * 48,
        mrconfigid=bytes([10]) * 48,
        mrowner=bytes([11]) * 48,
        mrownerconfig=bytes([12]) * 48,
        rtmr0=bytes([13]) * 48,
        rtmr1=bytes([14]) * 48,
        rtmr2=bytes([15]) * 48,
        rtmr3=bytes([16]) * 48,
        servtd_hash=bytes([17]) * 48,
    )
    return replace(report, **changes)


def synthetic_snp_report(**changes: object) -> SnpReport:
    report = SnpReport(
        version=3,
        guest_svn=2,
        policy=0x30000 | 1 << 19,
        family_id=bytes([1]) * 16,
        image_id=bytes([2]) * 16,
        vmpl=1,
        signature_algo=1,
        current_tcb=0x1122334455667788,
        platform_info=0x3,
        key_info=0x4,
        report_data=bytes(range(64)),
        measurement=bytes([3]) * 48,
        host_data=bytes([4]) * 32,
        id_key_digest=bytes([5]) * 48,
        author_key_digest=bytes([6]) * 48,
        report_id=bytes([7]) * 32,
        report_id_ma=bytes([8]) * 32,
        reported_tcb=0x0102030405060708,
        chip_id=bytes([9]) * 64,
        committed_tcb=0x0A0B0C0D0E0F1011,
        launch_tcb=0x1213141516171819,
        signature=bytes([10]) * 512,
        cpuid_fam_id=0x19,
        cpuid_mod_id=0x11,
        cpuid_step=1,
        current_build=21,
        current_minor=55,
        current_major=1,
        committed_build=20,
        committed_minor=54,
        committed_major=1,
    )
    return replace(report, **changes)


@pytest.mark.parametrize("expected", [V4_EXPECTED, V5_EXPECTED], ids=["v4", "v5"])
def test_real_quote_fields_match_the_documented_values(expected: dict) -> None:
    blob = read_sample(expected["file"])
    quote = parse_quote(blob)
    assert len(blob) == expected["size"]
    assert quote.version == expected["version"]
    assert quote.att_key_type == 2
    assert quote.tee_type == 0x81
    assert quote.qe_vendor_id.hex() == INTEL_QE
    assert quote.body_type == expected["body_type"]
    assert quote.td_attributes.to_bytes().hex() == expected["td_attributes_hex"]
    assert quote.td_attributes.value == expected["td_attributes_value"]
    assert quote.td_attributes.flags == expected["td_attributes_flags"]
    assert quote.td_attributes.debug is False
    assert quote.xfam.to_bytes().hex() == expected["xfam_hex"]
    assert quote.xfam.value == expected["xfam_value"]
    assert quote.xfam.amx is True
    assert quote.mrtd.hex() == expected["mrtd"]
    assert quote.rtmr0.hex() == expected["rtmr0"]
    assert quote.rtmr3 == bytes(48)
    assert quote.report_data.hex() == expected["report_data"]
    # The documented absolute offset, read independently of the parser.
    offset = expected["report_data_offset"]
    assert blob[offset : offset + 64].hex() == expected["report_data"]


def test_v4_quote_bits_decode_by_name() -> None:
    quote = parse_quote(read_sample(V4_EXPECTED["file"]))
    fields = quote.to_dict()
    assert fields["td_attributes"]["pks"] is True
    assert fields["td_attributes"]["debug"] is False
    assert fields["xfam"]["features"][-2:] == ["AMX_TILECFG", "AMX_TILEDATA"]
    assert fields["xfam"]["avx512"] is True
    assert fields["qe_vendor"] == "Intel"
    assert fields["trailing_bytes"] == 39  # the sample carries a test-only suffix after its signed data


def test_v5_quote_has_tdx15_fields() -> None:
    quote = parse_quote(read_sample(V5_EXPECTED["file"]))
    assert quote.body_size == 648
    assert quote.tee_tcb_svn2 is not None
    assert quote.mrservicetd is not None
    assert quote.to_dict()["td_attributes"]["sept_ve_disable"] is True


@pytest.mark.parametrize("name", [V4_EXPECTED["file"], V5_EXPECTED["file"]])
def test_real_quotes_reencode_byte_for_byte_and_are_recognised(name: str) -> None:
    blob = read_sample(name)
    assert parse_quote(blob).to_bytes() == blob
    assert detect_kind(blob) == "tdx-quote"
    assert isinstance(parse_evidence(blob), TdQuote)


def test_v5_quote_with_a_tdx10_body_type_2() -> None:
    v4 = parse_quote(read_sample(V4_EXPECTED["file"]))
    blob = replace(v4, version=5).to_bytes()
    assert int.from_bytes(blob[0x30:0x32], "little") == 2  # body type
    assert int.from_bytes(blob[0x32:0x36], "little") == 584  # body size
    assert blob[0x23E : 0x23E + 64] == v4.report_data  # REPORTDATA at the v5 offset
    quote = parse_quote(blob)
    assert (quote.version, quote.body_type) == (5, 2)
    assert quote.mrtd == v4.mrtd
    assert quote.tee_tcb_svn2 is None


def test_synthetic_tdreport_round_trips_at_the_documented_offsets() -> None:
    report = synthetic_tdreport()
    blob = report.to_bytes()
    assert len(blob) == TDREPORT_SIZE
    assert blob[0] == 0x81
    assert blob[128:192] == report.report_data
    assert blob[512:520] == report.td_attributes.to_bytes()
    assert blob[520:528] == report.xfam.to_bytes()
    assert blob[528:576] == report.mrtd
    assert blob[864:912] == report.rtmr3
    assert blob[280:328] == report.mrseam
    assert parse_tdreport(blob) == report
    assert isinstance(parse_evidence(blob), TdReport)


def test_quote_built_from_a_tdreport_carries_its_identity() -> None:
    report = synthetic_tdreport()
    for version in (4, 5):
        quote = parse_quote(quote_from_tdreport(report, version=version).to_bytes())
        assert quote.mrtd == report.mrtd
        assert quote.rtmrs == report.rtmrs
        assert quote.report_data == report.report_data
        assert quote.td_attributes == report.td_attributes


def test_synthetic_snp_report_round_trips_at_the_documented_offsets() -> None:
    report = synthetic_snp_report()
    blob = report.to_bytes()
    assert len(blob) == SNP_REPORT_SIZE
    assert int.from_bytes(blob[8:16], "little") == report.policy
    assert blob[0x50:0x90] == report.report_data
    assert blob[0x90:0xC0] == report.measurement
    assert int.from_bytes(blob[0x30:0x34], "little") == 1
    assert blob[0x2A0:] == report.signature
    assert parse_snp_report(blob) == report
    assert detect_kind(blob) == "sev-snp-report"
    fields = report.to_dict()
    assert fields["policy"]["debug"] is True
    assert "DEBUG" in fields["policy"]["flags"]
    assert fields["firmware"]["current"] == "1.55.21"


def test_snp_report_inside_a_sev_guest_response_is_unwrapped() -> None:
    report = synthetic_snp_report()
    response = (0).to_bytes(4, "little") + SNP_REPORT_SIZE.to_bytes(4, "little") + bytes(24) + report.to_bytes()
    assert parse_evidence(response) == report


def test_td_attribute_and_xfam_decoding() -> None:
    attributes = TdAttributes(1 | 1 << 40 | 1 << 63)
    assert attributes.flags == ["DEBUG", "BIT40", "PERFMON"]
    assert attributes.debug
    assert attributes.perfmon
    assert Xfam(0x20000 | 0xE7).amx is False  # AMX needs both bits 17 and 18
    assert Xfam(0x60000).amx is True
    assert Xfam(0x7).avx512 is False


def test_gpu_report_nonce_is_read_from_the_spdm_request() -> None:
    nonce = bytes(range(100, 132))
    report = parse_nvidia_report(build_fake_gpu_report(nonce))
    assert report.nonce == nonce
    bad = bytearray(build_fake_gpu_report(nonce))
    bad[1] = 0x81
    with pytest.raises(EvidenceFormatError, match="request code at offset 1"):
        parse_nvidia_report(bytes(bad))


# -- malformed input: always EvidenceFormatError naming the field, the offset and the length ---------------------


def test_truncated_v4_quote_names_the_field_offset_and_length() -> None:
    blob = read_sample(V4_EXPECTED["file"])
    with pytest.raises(EvidenceFormatError) as caught:
        parse_quote(blob[:600])
    message = str(caught.value)
    assert "REPORTDATA at offset 568 (0x238)" in message
    assert "600 bytes long" in message


def test_truncated_signed_data_is_named() -> None:
    blob = read_sample(V5_EXPECTED["file"])
    with pytest.raises(EvidenceFormatError, match=r"signed data at offset 706 \(0x2C2\) needs 4300 bytes"):
        parse_quote(blob[:2000])


@pytest.mark.parametrize("name", [V4_EXPECTED["file"], V5_EXPECTED["file"]])
def test_every_truncation_of_a_quote_is_a_format_error(name: str) -> None:
    blob = read_sample(name)
    limit = len(blob) - len(parse_quote(blob).trailing)
    for cut in range(0, limit, 13):
        with pytest.raises(EvidenceFormatError, match="offset"):
            parse_quote(blob[:cut])
        with pytest.raises(EvidenceFormatError):
            parse_evidence(blob[:cut])


def test_every_truncation_of_tdreport_and_snp_report_is_a_format_error() -> None:
    for parser, blob in (
        (parse_tdreport, synthetic_tdreport().to_bytes()),
        (parse_snp_report, synthetic_snp_report().to_bytes()),
    ):
        for cut in range(0, len(blob), 11):
            with pytest.raises(EvidenceFormatError, match=r"offset \d+ \(0x[0-9A-F]+\)") as caught:
                parser(blob[:cut])
            assert f"{cut} bytes long" in str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:4] + (0).to_bytes(4, "little") + b[8:], "TEE type at offset 4 is 0x00000000.*SGX quote"),
        (lambda b: (3).to_bytes(2, "little") + b[2:], "version at offset 0 is 3, expected 4 or 5"),
        (lambda b: b[:0x30] + (1).to_bytes(2, "little") + b[0x32:], "body type at offset 0x30 is 1.*SGX"),
        (lambda b: b[:0x32] + (600).to_bytes(4, "little") + b[0x36:], "body size at offset 0x32 is 600, expected 648"),
        (lambda b: b[:0x2BE] + (10).to_bytes(4, "little") + b[0x2C2:], "signed data size at offset 702"),
        (lambda b: b[:0x344] + (99).to_bytes(4, "little") + b[0x348:], "certification data size at offset 836"),
    ],
    ids=["sgx-tee-type", "version-3", "sgx-body", "body-size", "signed-size", "cert-size"],
)
def test_malformed_v5_quote_is_explained(mutate, message: str) -> None:
    blob = mutate(read_sample(V5_EXPECTED["file"]))
    with pytest.raises(EvidenceFormatError, match=message):
        parse_quote(blob)


def test_malformed_tdreport_and_snp_report_are_explained() -> None:
    blob = synthetic_tdreport().to_bytes()
    with pytest.raises(EvidenceFormatError, match="extra bytes from offset 1024"):
        parse_tdreport(blob + b"\0" * 76)
    with pytest.raises(EvidenceFormatError, match=r"REPORTTYPE\.TYPE at offset 0 is 0x00"):
        parse_tdreport(b"\0" + blob[1:])
    snp = synthetic_snp_report(vmpl=7).to_bytes()
    with pytest.raises(EvidenceFormatError, match="VMPL at offset 0x30 is 7"):
        parse_snp_report(snp)


def test_unrecognised_blob_says_what_was_expected() -> None:
    with pytest.raises(EvidenceFormatError, match=r"expected a TDREPORT.*TD quote.*SEV-SNP report") as caught:
        parse_evidence(b"hello, world")
    assert isinstance(caught.value, InputError)  # so the CLI turns it into exit code 2
    with pytest.raises(EvidenceFormatError, match="expected bytes"):
        parse_evidence("not bytes")  # type: ignore[arg-type]
