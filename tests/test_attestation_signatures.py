"""Offline signature checks: real TDX quotes and a real SEV-SNP report up to the pinned vendor roots, every way a
forgery or a tampered quote fails (each on its named check and nothing else), collateral, and bad input."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pytest_tee.attestation import evidence_command
from pytest_tee.attestation.chain import SignatureReport, check_signature
from pytest_tee.attestation.collateral import load_collateral
from pytest_tee.attestation.sev import SnpReport, parse_snp_report
from pytest_tee.attestation.signatures import SignatureContext, check_signatures
from pytest_tee.attestation.simulate import SimulatedSnpGuest, SimulatedTd
from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS, SimulatedAmdPki, SimulatedIntelPki
from pytest_tee.attestation.snp_verify import load_cert_dir, parse_cert_table, verify_snp_report
from pytest_tee.attestation.tdx import TdQuote, parse_quote
from pytest_tee.attestation.tdx_verify import load_pem_chain, parse_certification_data, verify_tdx_quote
from pytest_tee.attestation.trust_roots import (
    AMD_ARK_SPKI_SHA256,
    AMD_PRODUCT_CHAINS,
    INTEL_SGX_ROOT_CA_SPKI,
    VENDOR_ROOTS,
    TrustAnchors,
    spki,
    spki_sha256,
)
from pytest_tee.errors import InputError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
V4 = "tdx_prod_quote_SPR_E4.dat"
V5 = "quote_v5_sample.dat"
TDX_CHECKS = [
    "certification data",
    "quote signature",
    "QE report binding",
    "QE report signature",
    "PCK chain",
    "root pin",
    "validity",
]
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def shared(*parts: str) -> bytes:
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{path} not found (shared/testdata beside the repository)")
    return path.read_bytes()


def cn(subject: str) -> str:
    return next(part for part in subject.split(",") if part.startswith("CN="))


def outcomes(report: SignatureReport) -> dict[str, str]:
    return {step.name: step.outcome for step in report.steps}


def failed(report: SignatureReport) -> list[str]:
    return report.failed_steps()


def run_evidence(*argv: str | Path, anchors: TrustAnchors = VENDOR_ROOTS) -> int:
    parser = argparse.ArgumentParser(prog="pytest-tee evidence")
    evidence_command.add_arguments(parser)
    try:
        return evidence_command.run(parser.parse_args([str(arg) for arg in argv]), anchors=anchors)
    except InputError as exc:
        print(f"pytest-tee evidence: error: {exc}", file=sys.stderr)
        return 2


# -- the pinned roots ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [V4, V5])
def test_the_real_quotes_chain_to_the_pinned_intel_root(name: str) -> None:
    quote = parse_quote(shared("tdx", name))
    certs = load_pem_chain(parse_certification_data(quote).pck_chain_pem, "chain")
    root = certs[-1]
    assert spki(root.public_key()) == INTEL_SGX_ROOT_CA_SPKI
    assert check_signature(root, root) is None
    # The published certificate of the Intel SGX Root CA (e.g. pinned by other DCAP clients) is this one.
    der = root.public_bytes(serialization.Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
def test_each_shipped_amd_ark_is_self_signed_pinned_and_signs_its_ask(product: str) -> None:
    ask_pem, ark_pem = AMD_PRODUCT_CHAINS[product]
    ark = x509.load_pem_x509_certificate(ark_pem)
    ask = x509.load_pem_x509_certificate(ask_pem)
    assert ark.subject.rfc4514_string().startswith(f"CN=ARK-{product},")
    assert ask.subject.rfc4514_string().startswith(f"CN=SEV-{product},")
    assert check_signature(ark, ark) is None  # RSASSA-PSS, SHA-384
    assert check_signature(ark, ask) is None
    assert spki_sha256(ark.public_key()) == AMD_ARK_SPKI_SHA256[product]
    others = [other for other in AMD_PRODUCT_CHAINS if other != product]
    assert all(check_signature(x509.load_pem_x509_certificate(AMD_PRODUCT_CHAINS[o][1]), ask) for o in others)


# -- real TDX quotes, end to end -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [V4, V5])
def test_real_quotes_verify_end_to_end(name: str) -> None:
    report = verify_tdx_quote(shared("tdx", name), at=NOW)
    assert [step.name for step in report.steps] == [*TDX_CHECKS, "TCB status"]
    assert all(outcomes(report)[check] == "pass" for check in TDX_CHECKS)
    assert report.steps[-1].message == "signature chain valid; TCB status not checked (no collateral)"
    assert [cn(cert.subject) for cert in report.chain] == [
        "CN=Intel SGX PCK Certificate",
        "CN=Intel SGX PCK Platform CA",
        "CN=Intel SGX Root CA",
    ]
    assert report.details["pck"]["fmspc"] == {V4: "50806f000000", V5: "90c06f000000"}[name]
    assert report.details["pck"]["pce_id"] == "0000"
    assert report.details["pck"]["pcesvn"] == {V4: 11, V5: 13}[name]


def test_evidence_shows_the_chain_extensions_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    path = SHARED / "tdx" / V5
    shared("tdx", V5)
    assert run_evidence(path, "--at", "2026-06-01") == 0
    out = capsys.readouterr().out
    assert "  PCK           C=US,ST=CA,L=Santa Clara,O=Intel Corporation,CN=Intel SGX PCK Certificate" in out
    assert "valid 2026-01-27T14:36:27+00:00 to 2033-01-27T14:36:27+00:00" in out
    assert "pck: fmspc 90c06f000000, pce_id 0000, pcesvn 13, cpusvn 04040202040100050000000000000000" in out
    assert "  PASS  root pin: the root's public key is the pinned Intel SGX Root CA (vendor roots)" in out
    assert out.rstrip().endswith("verdict: signature chain valid; TCB status not checked (no collateral)")
    assert run_evidence(path, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["signatures"]["ok"] is True
    assert cn(shown["signatures"]["chain"][2]["subject"]) == "CN=Intel SGX Root CA"


# -- tampering: each fails on its named check and nothing else --------------------------------------------------
def flip(blob: bytes, offset: int) -> bytes:
    changed = bytearray(blob)
    changed[offset] ^= 0x01
    return bytes(changed)


def with_pck(quote: TdQuote, change_der) -> TdQuote:
    """The quote with its PCK certificate's DER changed by ``change_der`` (the chain re-encoded as PEM)."""
    data = parse_certification_data(quote)
    certs = load_pem_chain(data.pck_chain_pem, "chain")
    ders = [cert.public_bytes(serialization.Encoding.DER) for cert in certs]
    ders[0] = change_der(ders[0])
    pem = b"".join(
        b"-----BEGIN CERTIFICATE-----\n"
        + b"\n".join(base64.encodebytes(der).split(b"\n"))
        + b"-----END CERTIFICATE-----\n"
        for der in ders
    )
    fixed = quote.certification_data[: len(quote.certification_data) - len(data.pck_chain_pem) - 6]
    return replace(quote, certification_data=fixed + (5).to_bytes(2, "little") + len(pem).to_bytes(4, "little") + pem)


def signed_start(quote: TdQuote) -> int:
    return quote.body_offset + quote.body_size + 4


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (lambda raw, q: flip(raw, q.body_offset + 0x88), "quote signature"),  # one bit of MRTD
        (lambda raw, q: flip(raw, q.body_offset + 0x208 + 7), "quote signature"),  # one bit of REPORTDATA
        (lambda raw, q: flip(raw, signed_start(q) + 5), "quote signature"),
        (lambda raw, q: flip(raw, signed_start(q) + 134 + 64), "QE report signature"),  # the QE's MRENCLAVE
        (lambda raw, q: with_pck(q, lambda der: flip(der, len(der) - 1)).to_bytes(), "PCK chain"),
        (lambda raw, q: with_pck(q, lambda der: flip(der, der.index(b"Certificate"))).to_bytes(), "PCK chain"),
    ],
    ids=["td-body", "reportdata", "quote-signature", "qe-report", "pck-signature", "pck-tbs"],
)
@pytest.mark.parametrize("name", [V4, V5])
def test_one_flipped_bit_fails_exactly_one_check(name: str, tamper, check: str) -> None:
    raw = shared("tdx", name)
    tampered = tamper(raw, parse_quote(raw))
    assert tampered != raw
    report = verify_tdx_quote(tampered, at=NOW)
    assert failed(report) == [check], report.steps


def test_a_consistent_chain_to_a_self_made_root_fails_on_the_pin_only() -> None:
    # A forger with Intel's names everywhere, a real quote's TD identity, and every signature made properly.
    forger = SimulatedIntelPki("forger", intel_names=True)
    forged = forger.sign_quote(parse_quote(shared("tdx", V4))).to_bytes()
    report = verify_tdx_quote(forged, at=NOW)
    assert failed(report) == ["root pin"]
    assert "'Intel SGX Root CA' whose public key is not the pinned Intel SGX Root CA" in report.steps[5].message
    # With its root injected (tests only), the same quote is fine: the pin is what makes the difference.
    assert verify_tdx_quote(forged, at=NOW, anchors=forger.anchors).ok


def test_a_real_quote_with_new_reportdata_fails_on_the_quote_signature(tmp_path: Path) -> None:
    td = SimulatedTd(tmp_path / "td", quote_template=shared("tdx", V4))
    report = verify_tdx_quote(td.quote(b"\x42" * 64).to_bytes(), at=NOW)
    assert failed(report) == ["quote signature"]


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2030-01-01", "PCK (Intel SGX PCK Certificate) expired 2029-09-20"),
        ("2018-05-21T10:47:00Z", "not valid before 2018-05-21T10:50:10"),
    ],
)
def test_a_certificate_outside_its_validity_fails_on_validity_only(at: str, message: str) -> None:
    from pytest_tee.attestation.signatures import parse_at

    report = verify_tdx_quote(shared("tdx", V4), at=parse_at(at))
    assert failed(report) == ["validity"]
    assert message in outcomes_messages(report)["validity"]


def outcomes_messages(report: SignatureReport) -> dict[str, str]:
    return {step.name: step.message for step in report.steps}


# -- bad input -----------------------------------------------------------------------------------------------------
def bad_quote(tmp_path: Path, change) -> Path:
    quote = parse_quote(shared("tdx", V5))
    path = tmp_path / "bad.dat"
    path.write_bytes(change(quote).to_bytes())
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda q: replace(q, certification_data=q.certification_data[:300]),
            "certification data is 300 bytes, too short for the QE report",
        ),
        (
            lambda q: replace(q, certification_data=q.certification_data[:1500]),
            "the PCK certificate chain should be 3678 bytes but only 1012 are present: truncated",
        ),
        (
            lambda q: replace(q, certification_data=q.certification_data.replace(b"MIIE", b"M!!E", 1)),
            "the PCK certificate chain does not parse as PEM certificates",
        ),
        (lambda q: replace(q, certification_data_type=9), "certification data type is 9 (unknown), expected 6"),
        (lambda q: replace(q, certification_data_type=5), "certification data type is 5 (PCK certificate chain)"),
    ],
    ids=["truncated", "truncated-chain", "pem-does-not-parse", "unknown-type", "bare-chain"],
)
def test_broken_certification_data_is_one_fail_line(tmp_path: Path, capsys, change, message: str) -> None:
    assert run_evidence(bad_quote(tmp_path, change)) == 1
    captured = capsys.readouterr()
    (line,) = [line for line in captured.out.splitlines() if "FAIL  certification data" in line]
    assert message in line
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 date"),
        (["--collateral", "/nonexistent"], "--collateral /nonexistent: not a directory"),
        (["--snp-certs", "/nonexistent"], "--snp-certs /nonexistent: not a directory"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, args: list[str], message: str) -> None:
    shared("tdx", V4)
    assert run_evidence(SHARED / "tdx" / V4, *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


# -- SEV-SNP -------------------------------------------------------------------------------------------------------
def real_snp_certs(tmp_path: Path) -> Path:
    certs = tmp_path / "certs"
    certs.mkdir(parents=True)
    (certs / "vcek.der").write_bytes(shared("snp", "vcek.der"))
    return certs


def test_the_real_snp_report_verifies_with_its_vcek_and_amds_milan_chain(tmp_path: Path, capsys) -> None:
    raw = shared("snp", "attestation.bin")
    report = verify_snp_report(raw, certificates=load_cert_dir(real_snp_certs(tmp_path)), at=NOW)
    assert failed(report) == []
    assert [step.name for step in report.steps] == [
        "certificates", "report signature", "VCEK chain", "root pin", "validity", "VCEK TCB", "TCB status"
    ]  # fmt: skip
    assert [cn(cert.subject) for cert in report.chain] == ["CN=SEV-VCEK", "CN=SEV-Milan", "CN=ARK-Milan"]
    assert report.details["vcek_tcb"]["microcode"] == 68
    assert run_evidence(SHARED / "snp" / "attestation.bin", "--snp-certs", real_snp_certs(tmp_path / "b")) == 0
    assert "PASS  VCEK TCB: the VCEK was issued for the report's REPORTED_TCB" in capsys.readouterr().out


def test_the_real_snp_report_without_certificates_fails_on_certificates(capsys) -> None:
    shared("snp", "attestation.bin")
    assert run_evidence(SHARED / "snp" / "attestation.bin") == 1
    out = capsys.readouterr().out
    assert "FAIL  certificates: no VCEK certificate: no certificates were given; pass --snp-certs DIR" in out


def test_a_flipped_bit_in_the_real_snp_report_fails_its_signature(tmp_path: Path) -> None:
    raw = flip(shared("snp", "attestation.bin"), 0x90)  # MEASUREMENT
    report = verify_snp_report(raw, certificates=load_cert_dir(real_snp_certs(tmp_path)), at=NOW)
    assert failed(report) == ["report signature"]


def simulated_report(pki: SimulatedAmdPki) -> bytes:
    guest = SimulatedSnpGuest("/nonexistent", pki=pki)
    return guest.report(b"\x07" * 64).to_bytes()


@pytest.fixture(scope="module")
def amd() -> SimulatedAmdPki:
    return SimulatedAmdPki()


def test_a_simulated_report_verifies_through_its_certificate_table(amd: SimulatedAmdPki) -> None:
    report = verify_snp_report(
        simulated_report(amd), certificates=parse_cert_table(amd.cert_table()), anchors=SIMULATED_ANCHORS, at=NOW
    )
    assert failed(report) == []
    # The vendor roots do not know the simulated ARK: the same report fails on the pin only.
    report = verify_snp_report(simulated_report(amd), certificates=parse_cert_table(amd.cert_table()), at=NOW)
    assert failed(report) == ["root pin"]


def test_an_auxblob_with_only_the_vcek_uses_the_shipped_ask_and_ark(amd: SimulatedAmdPki) -> None:
    table = parse_cert_table(amd.cert_table(ask=False, ark=False))
    report = verify_snp_report(simulated_report(amd), certificates=table, anchors=SIMULATED_ANCHORS, at=NOW)
    assert failed(report) == []
    assert "ASK from pytest-tee's copy of AMD's ASK-Milan" in report.steps[0].message


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda pki, raw, certs: (flip(raw, 0x50), certs), "report signature"),
        (lambda pki, raw, certs: (raw, [pki.make_vcek(0x4405000000000003)]), "VCEK TCB"),
        (lambda pki, raw, certs: (raw, [pki.make_vcek(pki.reported_tcb, chip_id=b"\x01" * 64)]), "VCEK TCB"),
        (lambda pki, raw, certs: (raw, []), "certificates"),
        (
            lambda pki, raw, certs: (SnpReport.to_bytes(replace(parse_snp_report(raw), key_info=4)), certs),
            "certificates",
        ),
    ],
    ids=["report-bit", "vcek-for-another-tcb", "vcek-of-another-chip", "no-vcek", "vlek-without-cert"],
)
def test_snp_forgeries_fail_on_their_check(amd: SimulatedAmdPki, change, check: str) -> None:
    raw, certs = change(amd, simulated_report(amd), [amd.vcek])
    table = parse_cert_table(amd.cert_table(vcek=False))
    for cert in certs:
        table.add(cert, "test")
    report = verify_snp_report(raw, certificates=table, anchors=SIMULATED_ANCHORS, at=NOW)
    assert failed(report) == [check]


def test_an_expired_vcek_fails_on_validity(amd: SimulatedAmdPki) -> None:
    table = parse_cert_table(amd.cert_table())
    later = dt.datetime(2040, 1, 1, tzinfo=dt.timezone.utc)
    report = verify_snp_report(simulated_report(amd), certificates=table, anchors=SIMULATED_ANCHORS, at=later)
    assert failed(report) == ["validity"]


def test_kind_sev_snp_report_rejects_unknown_versions(tmp_path: Path, capsys) -> None:
    path = tmp_path / "report.bin"
    path.write_bytes((9).to_bytes(4, "little") + shared("snp", "attestation.bin")[4:])
    assert run_evidence(path, "--kind", "sev-snp-report") == 2
    assert "VERSION at offset 0 is 9, expected one of 2, 3, 4, 5" in capsys.readouterr().err


# -- collateral ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intel() -> SimulatedIntelPki:
    return SimulatedIntelPki("collateral")


def simulated_quote(pki: SimulatedIntelPki, tmp_path: Path) -> bytes:
    return SimulatedTd(tmp_path / "td", pki=pki).quote(b"\x05" * 64).to_bytes()


def collateral_dir(tmp_path: Path, pki: SimulatedIntelPki, levels=None, *, revoked=(), **kwargs) -> Path:
    directory = tmp_path / "collateral"
    directory.mkdir(exist_ok=True)
    (directory / "tcb_info.json").write_bytes(pki.tcb_info(levels or [pki.tcb_level("UpToDate")], **kwargs))
    (directory / "tcb_info_issuer_chain.pem").write_bytes(pki.issuer_chain())
    (directory / "qe_identity.json").write_bytes(pki.qe_identity())
    (directory / "pckcrl.der").write_bytes(pki.pck_crl(revoked))
    return directory


def with_collateral(raw: bytes, directory: Path, anchors: TrustAnchors) -> SignatureReport:
    return verify_tdx_quote(raw, at=NOW, anchors=anchors, collateral=load_collateral(directory))


def test_collateral_up_to_date(intel: SimulatedIntelPki, tmp_path: Path, capsys) -> None:
    raw = simulated_quote(intel, tmp_path)
    report = with_collateral(raw, collateral_dir(tmp_path, intel), intel.anchors)
    assert failed(report) == []
    assert outcomes(report)["collateral"] == "pass"
    assert outcomes(report)["revocation"] == "pass"
    assert outcomes_messages(report)["TCB status"].startswith("UpToDate (platform UpToDate at TCB level 2024-03-13")
    quote = tmp_path / "quote.dat"
    quote.write_bytes(raw)
    directory = tmp_path / "collateral"
    assert run_evidence(quote, "--collateral", directory, "--at", "2026-06-01", anchors=intel.anchors) == 0
    out = capsys.readouterr().out
    assert "PASS  TCB status: UpToDate" in out
    assert "verdict: signature chain valid; TCB status UpToDate (platform UpToDate" in out
    # The command line trusts Intel's root only: the same files prove nothing there.
    assert run_evidence(quote, "--collateral", directory) == 1
    out = capsys.readouterr().out
    assert "FAIL  root pin" in out
    assert "does not chain to the pinned root" in out
    assert "verdict: FAILED: root pin, collateral" in out


def test_collateral_out_of_date(intel: SimulatedIntelPki, tmp_path: Path) -> None:
    levels = [intel.tcb_level("UpToDate", bump=1), intel.tcb_level("OutOfDate", advisories=("INTEL-SA-00837",))]
    report = with_collateral(simulated_quote(intel, tmp_path), collateral_dir(tmp_path, intel, levels), intel.anchors)
    assert failed(report) == ["TCB status"]
    assert "OutOfDate" in outcomes_messages(report)["TCB status"]
    assert "INTEL-SA-00837" in outcomes_messages(report)["TCB status"]
    assert report.details["tcb_status"]["status"] == "OutOfDate"


def test_sw_hardening_needed_is_a_note(intel: SimulatedIntelPki, tmp_path: Path) -> None:
    levels = [intel.tcb_level("SWHardeningNeeded", advisories=("INTEL-SA-00615",))]
    report = with_collateral(simulated_quote(intel, tmp_path), collateral_dir(tmp_path, intel, levels), intel.anchors)
    assert failed(report) == []
    assert outcomes(report)["TCB status"] == "note"


def test_a_revoked_pck_fails(intel: SimulatedIntelPki, tmp_path: Path) -> None:
    directory = collateral_dir(tmp_path, intel, revoked=(intel.pck.serial_number,))
    report = with_collateral(simulated_quote(intel, tmp_path), directory, intel.anchors)
    assert failed(report) == ["revocation", "TCB status"]
    assert "revoked: PCK 'Simulated SGX PCK Certificate' (serial 1234)" in outcomes_messages(report)["revocation"]
    assert outcomes_messages(report)["TCB status"].startswith("Revoked")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d, pki: _edit(d / "tcb_info.json", b"UpToDate", b"UpToDatf"), "TCB info's signature does not verify"),
        (lambda d, pki: forge_tcb_info(d), "TCB info is signed by 'Intel SGX TCB Signing', which does not chain"),
        (
            lambda d, pki: (d / "qe_identity.json").write_bytes(pki.qe_identity(next_update="2025-01-01T00:00:00Z")),
            "QE identity expired (nextUpdate 2025-01-01T00:00:00Z)",
        ),
        (
            lambda d, pki: (d / "tcb_info.json").write_bytes(pki.tcb_info([], fmspc=bytes(6))),
            "TCB info is for FMSPC 000000000000, the PCK certificate says 00806f050000",
        ),
        (
            lambda d, pki: (d / "pckcrl.der").write_bytes(SimulatedIntelPki("collateral").pck_crl()[:-3] + b"abc"),
            "pckcrl.der: the CRL of CA 'Simulated SGX PCK Platform CA' is not signed by it",
        ),
        (
            lambda d, pki: (d / "tcb_info.json").write_bytes(pki.tcb_info([pki.tcb_level("UpToDate")], kind="SGX")),
            "TCB info has id 'SGX', not 'TDX'",
        ),
    ],
    ids=["edited", "forged-signer", "expired", "other-fmspc", "crl-signature", "sgx-tcb-info"],
)
def test_untrustworthy_collateral_fails_on_collateral(intel: SimulatedIntelPki, tmp_path: Path, spoil, message) -> None:
    directory = collateral_dir(tmp_path, intel)
    spoil(directory, intel)
    report = with_collateral(simulated_quote(intel, tmp_path), directory, intel.anchors)
    assert "collateral" in failed(report)
    assert message in outcomes_messages(report)["collateral"]
    assert outcomes(report)["TCB status"] in ("note", "fail")


def forge_tcb_info(directory: Path) -> None:
    forger = SimulatedIntelPki("forger", intel_names=True)
    (directory / "tcb_info.json").write_bytes(forger.tcb_info([]))
    (directory / "forger_chain.pem").write_bytes(forger.issuer_chain())


def _edit(path: Path, old: bytes, new: bytes) -> None:
    path.write_bytes(path.read_bytes().replace(old, new))


def test_snp_crl_revokes_a_vcek(amd: SimulatedAmdPki, tmp_path: Path) -> None:
    directory = tmp_path / "amd"
    directory.mkdir()
    (directory / "crl").write_bytes(amd.crl())
    table = parse_cert_table(amd.cert_table())
    raw = simulated_report(amd)
    clean = verify_snp_report(
        raw, certificates=table, anchors=SIMULATED_ANCHORS, at=NOW, collateral=load_collateral(directory)
    )
    assert failed(clean) == []
    assert outcomes(clean)["revocation"] == "pass"
    (directory / "crl").write_bytes(amd.crl((amd.ask.serial_number,)))
    revoked = verify_snp_report(
        raw, certificates=table, anchors=SIMULATED_ANCHORS, at=NOW, collateral=load_collateral(directory)
    )
    assert failed(revoked) == ["revocation", "TCB status"]


def test_an_empty_collateral_directory_is_an_input_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "junk.txt").write_text("hello")
    shared("tdx", V4)
    assert run_evidence(SHARED / "tdx" / V4, "--collateral", tmp_path) == 2
    assert "holds no TCB info, QE identity or CRL (junk.txt: not TCB info" in capsys.readouterr().err


# -- small fixes: trailing bytes, broken pipes --------------------------------------------------------------------
def test_non_zero_trailing_bytes_are_flagged_and_zero_padding_is_not(tmp_path: Path, capsys) -> None:
    shared("tdx", V4)
    assert run_evidence(SHARED / "tdx" / V4) == 0
    assert "warning: 39 non-zero bytes after the signed data (covered by no signature, ignored)" in (
        capsys.readouterr().out
    )
    padded = tmp_path / "padded.dat"
    padded.write_bytes(shared("tdx", V5) + bytes(16))
    assert run_evidence(padded) == 0
    out = capsys.readouterr().out
    assert "warning:" not in out
    assert run_evidence(padded, "--json") == 0
    assert json.loads(capsys.readouterr().out)["trailing"] == {
        "size": 16, "non_zero": False, "note": "16 bytes of zero padding after the signed data"
    }  # fmt: skip


def test_a_closed_pipe_ends_the_evidence_command_quietly() -> None:
    shared("tdx", V4)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_tee.cli", "evidence", str(SHARED / "tdx" / V4)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # as `| head -1` does once it has its line: every write now fails with EPIPE
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0
    assert "Traceback" not in err
    assert "BrokenPipe" not in err


# -- through `pytest-tee verify` on a results file ------------------------------------------------------------------
def run_verify(*argv: str | Path, anchors: TrustAnchors = SIMULATED_ANCHORS) -> int:
    from pytest_tee.attestation import verify_command

    parser = argparse.ArgumentParser(prog="pytest-tee verify")
    verify_command.add_arguments(parser)
    try:
        return verify_command.run(parser.parse_args([str(arg) for arg in argv]), anchors=anchors)
    except InputError as exc:
        print(f"pytest-tee verify: error: {exc}", file=sys.stderr)
        return 2


def attested_results(path: Path, simulator) -> Path:
    from pytest_tee.attestation.binding import attest_document

    doc = {"benchmarks": [{"name": "decode", "stats": {"median": 0.25}}], "pytest_tee": {"schema": 1}}
    with simulator:
        doc["pytest_tee"]["attestation"] = attest_document(doc, sysroot=simulator.sysroot, gpu=False)
    path.write_text(json.dumps(doc))
    return path


def test_snp_results_verify_with_the_certificates_collected_beside_the_report(tmp_path: Path, capsys) -> None:
    results = attested_results(tmp_path / "results.json", SimulatedSnpGuest(tmp_path / "snp"))
    assert run_verify(results) == 0
    out = capsys.readouterr().out
    assert "PASS  sev-snp-report: report signature: the report is signed by the VCEK (ECDSA P-384)" in out
    assert "from auxblob (VCEK)" in out
    assert run_verify(results, "--json") == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert {"subject": "sev-snp-report", "name": "VCEK chain", "outcome": "pass"}.items() <= next(
        check for check in checks if check["name"] == "VCEK chain"
    ).items()


def test_snp_results_without_certificates_fail_until_they_are_handed_in(tmp_path: Path, capsys) -> None:
    pki = SimulatedAmdPki()
    results = attested_results(tmp_path / "results.json", SimulatedSnpGuest(tmp_path / "snp", pki=pki, auxblob=b""))
    assert run_verify(results) == 1
    assert "FAIL  sev-snp-report: certificates: no VCEK certificate: no certificates were given" in (
        capsys.readouterr().out
    )
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "vcek.pem").write_bytes(pki.vcek.public_bytes(serialization.Encoding.PEM))
    assert run_verify(results, "--snp-certs", certs) == 0


def test_verify_with_collateral_reports_the_tcb_status(tmp_path: Path, capsys) -> None:
    pki = SimulatedIntelPki()  # the root SimulatedTd uses by default
    results = attested_results(tmp_path / "results.json", SimulatedTd(tmp_path / "td", pki=pki))
    directory = collateral_dir(tmp_path, pki, [pki.tcb_level("UpToDate", bump=2), pki.tcb_level("OutOfDate")])
    assert run_verify(results) == 0
    assert "NOTE  tdx-quote: TCB status: signature chain valid; TCB status not checked (no collateral)" in (
        capsys.readouterr().out
    )
    assert run_verify(results, "--collateral", directory) == 1
    out = capsys.readouterr().out
    assert "PASS  tdx-quote: collateral:" in out
    assert "FAIL  tdx-quote: TCB status: OutOfDate (platform OutOfDate" in out


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")
@pytest.mark.parametrize("name", [V4, V5])
def test_no_flipped_bit_anywhere_in_a_quote_raises_or_goes_unnoticed(name: str) -> None:
    raw = shared("tdx", name)
    original = parse_quote(raw)
    chain = parse_certification_data(original).pck_chain_pem
    ders = [c.public_bytes(serialization.Encoding.DER) for c in load_pem_chain(chain, "chain")]
    pem_start = len(raw) - len(original.trailing) - len(chain)
    for offset in range(0, len(raw), 13):  # a stride, to keep the suite quick; every field is still hit
        tampered = flip(raw, offset)
        try:
            quote = parse_quote(tampered)
        except ValueError:
            continue  # a structural error: exit 2 with a message, tested elsewhere
        report = verify_tdx_quote(tampered, quote, at=NOW)
        # Only bytes no signature covers may change unnoticed: the trailing bytes, or PEM text that decodes to the
        # same certificates (a flipped line break, say).
        if report.ok and offset < len(raw) - len(quote.trailing):
            assert offset >= pem_start, (offset, report.failed_steps())
            certs = load_pem_chain(parse_certification_data(quote).pck_chain_pem, "chain")
            assert [c.public_bytes(serialization.Encoding.DER) for c in certs] == ders


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")  # cryptography on a damaged country name
def test_no_flipped_bit_in_an_snp_report_or_its_certificate_table_raises(amd: SimulatedAmdPki) -> None:
    raw = simulated_report(amd)
    table = amd.cert_table()
    for offset in range(0, 0x2A0 + 144, 7):  # the signed bytes and the signature's r and s
        tampered = flip(raw, offset)
        try:
            report = parse_snp_report(tampered)
        except ValueError:
            continue
        result = verify_snp_report(tampered, report, certificates=parse_cert_table(table), anchors=SIMULATED_ANCHORS)
        assert not result.ok, offset
    context = SignatureContext(anchors=SIMULATED_ANCHORS)
    report = parse_snp_report(raw)
    for offset in range(0, len(table), 23):
        # Through the commands' entry point: a certificate too damaged to read is a failed check there.
        result = check_signatures(report, raw, context, auxblob=flip(table, offset))
        assert result is not None


def test_a_vlek_signed_report_verifies_through_the_asvk() -> None:
    vlek = SimulatedAmdPki("cloud", vlek=True)
    anchors = replace(
        SIMULATED_ANCHORS, amd_ark_spki_sha256={"Milan": spki_sha256(vlek.ark.public_key())}, amd_product_chains={}
    )
    raw = simulated_report(vlek)
    report = verify_snp_report(raw, certificates=parse_cert_table(vlek.cert_table()), anchors=anchors, at=NOW)
    assert failed(report) == []
    assert [step.name for step in report.steps][2] == "VLEK chain"
    assert [cn(cert.subject) for cert in report.chain] == ["CN=SEV-VLEK", "CN=SEV-VLEK-Milan", "CN=ARK-Milan"]
    # pytest-tee ships no ASVK (KDS serves it at /vlek/v1/PRODUCT/cert_chain): without it the chain is incomplete.
    report = verify_snp_report(raw, certificates=parse_cert_table(vlek.cert_table(ask=False)), anchors=anchors)
    assert failed(report) == ["certificates"]
    assert "no ASVK certificate for Milan" in report.steps[0].message


def test_a_certificate_signed_by_a_leaf_key_fails_the_chain() -> None:
    # Someone holding one platform's PCK private key certifies a key of their own under it: every signature is
    # valid, but the PCK is not a CA.
    pki = SimulatedIntelPki("leaked")
    from pytest_tee.attestation.simulated_pki import derived_key, make_cert, pem, sgx_extension

    rogue_key = derived_key("rogue", pki.pck_key.curve)
    rogue_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Rogue PCK Certificate")])
    extensions = (sgx_extension(pki.tcb),)
    rogue = make_cert(rogue_name, rogue_key, pki.pck.subject, pki.pck_key, serial=9, ca=False, extensions=extensions)
    forger = SimulatedIntelPki("leaked")
    forger.pck_key = rogue_key  # the QE report is signed with the rogue key
    quote = forger.sign_quote(parse_quote(shared("tdx", V4)), chain=pem(rogue, pki.pck, pki.platform_ca, pki.root))
    report = verify_tdx_quote(quote.to_bytes(), at=NOW, anchors=pki.anchors)
    assert failed(report) == ["PCK chain"]
    assert "signs certificates but is not a CA" in outcomes_messages(report)["PCK chain"]


def test_a_certificate_directory_holding_every_products_chain_picks_the_one_the_names_link(tmp_path: Path) -> None:
    certs = real_snp_certs(tmp_path)
    for product, (ask, ark) in AMD_PRODUCT_CHAINS.items():
        (certs / f"{product.lower()}_cert_chain.pem").write_bytes(ask + ark)  # as KDS serves cert_chain
    report = verify_snp_report(shared("snp", "attestation.bin"), certificates=load_cert_dir(certs), at=NOW)
    assert failed(report) == []
    assert "ASK from" in report.steps[0].message
    assert "milan_cert_chain.pem" in report.steps[0].message
