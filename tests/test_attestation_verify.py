"""`pytest-tee verify` and `pytest-tee evidence`: collect + bind + verify on a simulated TD, and every way it fails."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from pytest_tee.attestation import evidence_command, verify_command
from pytest_tee.attestation.binding import attest_document
from pytest_tee.attestation.simulate import SimulatedSnpGuest, SimulatedTd
from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS
from pytest_tee.attestation.tdx import parse_tdreport
from pytest_tee.attestation.trust_roots import VENDOR_ROOTS, TrustAnchors
from pytest_tee.errors import InputError

TESTDATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "tdx").resolve()
V4_MRTD = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb"


def sample(name: str) -> Path:
    path = TESTDATA / name
    if not path.is_file():
        pytest.skip(f"real TDX quote sample {name} not found in {TESTDATA} (shared/testdata beside the repository)")
    return path


def run_cli(module: ModuleType, *argv: str, anchors: TrustAnchors = SIMULATED_ANCHORS) -> int:
    """What ``pytest_tee.cli.main`` does for one command: parse, run, InputError → exit 2.

    The simulated evidence is signed under self-made roots, handed in through the test-only ``anchors``.
    """
    parser = argparse.ArgumentParser(prog="pytest-tee")
    module.add_arguments(parser)
    try:
        return module.run(parser.parse_args([str(arg) for arg in argv]), anchors=anchors)
    except InputError as exc:
        print(f"pytest-tee: error: {exc}", file=sys.stderr)
        return 2


def results_doc() -> dict:
    return {
        "machine_info": {"node": "td-runner"},
        "commit_info": {"id": "abc123"},
        "benchmarks": [
            {
                "name": "test_decode[tdx-r1-distill-qwen-1.5b]",
                "stats": {"median": 0.25, "rounds": 3, "data": [0.24, 0.25, 0.26]},
                "extra_info": {"tee": {"samples": {"decode_tps": [4.1, 4.0, 4.2]}}},
            }
        ],
        "datetime": "2025-01-01T00:00:00+00:00",
        "version": "5.3.1",
        "pytest_tee": {"schema": 1},
    }


def attest_to_file(path: Path, simulator, doc: dict | None = None) -> dict:
    doc = doc or results_doc()
    with simulator:
        doc["pytest_tee"]["attestation"] = attest_document(doc, sysroot=simulator.sysroot, gpu=False)
    path.write_text(json.dumps(doc, indent=4))
    return doc


@pytest.fixture
def attested(tmp_path: Path) -> tuple[Path, SimulatedTd]:
    simulator = SimulatedTd(tmp_path / "td")
    path = tmp_path / "results.json"
    attest_to_file(path, simulator)
    return path, simulator


def edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_untouched_results_verify(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    assert run_cli(verify_command, path) == 0
    out = capsys.readouterr().out
    assert "PASS  tdx-quote: REPORTDATA: REPORTDATA matches the SHA-512 of the results" in out
    assert "PASS  tdx-tdreport: REPORTDATA" in out
    assert "PASS  results: consistency" in out
    for check in ("quote signature", "QE report binding", "QE report signature", "PCK chain", "root pin", "validity"):
        assert f"PASS  tdx-quote: {check}: " in out
    assert "NOTE  tdx-quote: TCB status: signature chain valid; TCB status not checked (no collateral)" in out
    assert "FAIL" not in out
    assert out.rstrip().endswith("the evidence binds these results")


def test_changing_one_number_fails_the_reportdata_check(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    edit(path, lambda doc: doc["benchmarks"][0]["extra_info"]["tee"]["samples"]["decode_tps"].__setitem__(0, 4.5))
    assert run_cli(verify_command, path) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  tdx-quote: REPORTDATA: REPORTDATA does not match the results: the results were changed after "
        "attestation" in out
    )
    assert "the evidence does NOT vouch for these results" in out


def test_raw_timing_data_may_differ_between_the_two_files(attested) -> None:
    path, _ = attested
    edit(path, lambda doc: doc["benchmarks"][0]["stats"].pop("data"))  # as in storage without --benchmark-save-data
    assert run_cli(verify_command, path) == 0


def test_expected_measurements(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, simulator = attested
    mrtd = simulator.identity.mrtd.hex()
    rtmr2 = simulator.identity.rtmr2.hex()
    assert run_cli(verify_command, path, "--expect-mrtd", mrtd.upper(), "--expect-rtmr", f"2=0x{rtmr2}") == 0
    assert f"PASS  tdx-quote: MRTD: MRTD is {mrtd} as expected" in capsys.readouterr().out

    wrong = "ab" * 48
    assert run_cli(verify_command, path, "--expect-mrtd", wrong, "--expect-rtmr", f"3={rtmr2}") == 1
    out = capsys.readouterr().out
    assert f"FAIL  tdx-quote: MRTD: MRTD is {mrtd}, expected {wrong}" in out
    assert f"FAIL  tdx-quote: RTMR3: RTMR3 is {'00' * 48}, expected {rtmr2}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expect-mrtd", "abc"], "--expect-mrtd: expected 96 hex digits"),
        (["--expect-mrtd", "zz" * 48], "is not hexadecimal"),
        (["--expect-rtmr", "4=" + "00" * 48], "N in 0..3"),
        (["--expect-rtmr", "00" * 48], "is not N=HEX"),
    ],
)
def test_bad_expectations_are_input_errors(attested, capsys, args: list[str], message: str) -> None:
    path, _ = attested
    assert run_cli(verify_command, path, *args) == 2
    assert message in capsys.readouterr().err


def test_truncated_quote_in_a_results_file_is_a_clear_failure(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested

    def truncate_quote(doc: dict) -> None:
        item = doc["pytest_tee"]["attestation"]["evidence"][1]
        item["raw"] = base64.b64encode(base64.b64decode(item["raw"])[:600]).decode()

    edit(path, truncate_quote)
    assert run_cli(verify_command, path) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  tdx-quote: structure: the evidence does not parse: TD quote: REPORTDATA at offset 568 (0x238) needs "
        "64 bytes, but the blob is 600 bytes long" in out
    )


def test_edited_parsed_fields_are_caught(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    edit(path, lambda doc: doc["pytest_tee"]["attestation"]["evidence"][1]["fields"].__setitem__("mrtd", "00" * 48))
    assert run_cli(verify_command, path) == 1
    assert "FAIL  tdx-quote: fields: the parsed fields stored beside the raw evidence differ from it (mrtd)" in (
        capsys.readouterr().out
    )


def test_tdreport_and_quote_from_different_tds_are_inconsistent(attested, capsys) -> None:
    path, _ = attested

    def swap_mrtd(doc: dict) -> None:
        item = doc["pytest_tee"]["attestation"]["evidence"][0]
        report = parse_tdreport(base64.b64decode(item["raw"]))
        forged = replace(report, mrtd=b"\x01" * 48)
        item["raw"] = base64.b64encode(forged.to_bytes()).decode()
        item.pop("sha256")
        item["fields"] = forged.to_dict()

    edit(path, swap_mrtd)
    assert run_cli(verify_command, path) == 1
    assert "FAIL  results: consistency: the TDX evidence items disagree on mrtd" in capsys.readouterr().out


def test_debug_td_fails_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    attest_to_file(path, SimulatedTd(tmp_path / "td", debug=True))
    assert run_cli(verify_command, path) == 1
    assert "FAIL  tdx-quote: DEBUG: the TD has the DEBUG attribute: NOT CONFIDENTIAL" in capsys.readouterr().out
    assert run_cli(verify_command, path, "--allow-debug") == 0


def test_results_without_evidence_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = results_doc()
    doc["pytest_tee"]["attestation"] = attest_document(doc, sysroot=tmp_path / "bare", gpu=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert run_cli(verify_command, path) == 1
    out = capsys.readouterr().out
    assert "holds no evidence" in out
    assert "tdx-tdreport: no-device" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not JSON (Expecting property name"),
        ("[1, 2]", "holds a JSON list"),
        (json.dumps({"benchmarks": []}), "have no attestation block"),
        (json.dumps({"pytest_tee": {"attestation": {"scheme": "md5-v0"}}}), "scheme 'md5-v0' is not one"),
    ],
    ids=["missing", "not-json", "not-object", "no-block", "unknown-scheme"],
)
def test_bad_input_exits_2(tmp_path: Path, capsys, content: str | None, message: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    assert run_cli(verify_command, path) == 2
    err = capsys.readouterr().err
    assert message in err
    assert str(path) in err


def write_verifier(tmp_path: Path, exit_code: int, said: str) -> str:
    script = tmp_path / "fake_verifier.py"
    script.write_text(
        "import os, sys\n"
        "blob = open(sys.argv[1], 'rb').read()\n"
        "assert os.environ['PYTEST_TEE_EVIDENCE_KIND'] == 'tdx-quote'\n"
        "assert blob[:2] == b'\\x04\\x00' and len(os.environ['PYTEST_TEE_REPORT_DATA']) == 128\n"
        f"print({said!r})\n"
        f"sys.exit({exit_code})\n"
    )
    return f"{sys.executable} {script}"


def test_quote_verifier_hook(attested, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    assert run_cli(verify_command, path, "--quote-verifier", write_verifier(tmp_path, 0, "Quote UpToDate")) == 0
    assert "PASS  tdx-quote: external verifier: accepted by" in capsys.readouterr().out
    assert run_cli(verify_command, path, "--quote-verifier", write_verifier(tmp_path, 3, "TCB OutOfDate")) == 1
    out = capsys.readouterr().out
    assert "FAIL  tdx-quote: external verifier: rejected by" in out
    assert "(exit 3): TCB OutOfDate" in out
    assert run_cli(verify_command, path, "--quote-verifier", str(tmp_path / "no-such-verifier")) == 2
    assert "not found" in capsys.readouterr().err


def test_json_output(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    assert run_cli(verify_command, path, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {"subject": "tdx-quote", "name": "REPORTDATA", "outcome": "pass"}.items() <= report["checks"][4].items()


def test_snp_results_verify_with_expected_measurement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    guest = SimulatedSnpGuest(tmp_path / "snp")
    attest_to_file(path, guest)
    measurement = guest.identity.measurement.hex()
    assert run_cli(verify_command, path, "--expect-measurement", measurement) == 0
    assert "PASS  sev-snp-report: REPORT" in capsys.readouterr().out
    assert run_cli(verify_command, path, "--expect-mrtd", V4_MRTD) == 1
    assert "there is no TDX evidence" in capsys.readouterr().out


# -- pytest-tee evidence ------------------------------------------------------------------------------------------


def test_evidence_prints_a_real_quote(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(evidence_command, sample("tdx_prod_quote_SPR_E4.dat"), anchors=VENDOR_ROOTS) == 0
    out = capsys.readouterr().out
    assert "TD quote v4 (TDX 1.0 body)" in out
    assert V4_MRTD in out
    assert "0x40000000 [PKS]" in out
    assert "(AMX: yes, AVX-512: yes)" in out
    assert "note: PERFMON is off" in out


def test_evidence_json_for_the_v5_quote(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(evidence_command, sample("quote_v5_sample.dat"), "--json", anchors=VENDOR_ROOTS) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "tdx-quote"
    assert shown["fields"]["body_type"] == 3
    assert shown["fields"]["xfam"]["hex"] == "e702060000000000"


def test_evidence_warns_loudly_about_a_debug_tdreport(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatedTd(tmp_path / "td", debug=True, xfam=0xE7) as td:
        blob = td.tdreport(bytes(64)).to_bytes()
    path = tmp_path / "tdreport.bin"
    path.write_bytes(blob)
    assert run_cli(evidence_command, path, "--cpu-flags", "avx512f,amx_bf16") == 0
    out = capsys.readouterr().out
    assert "TDREPORT (type 0x81" in out
    assert "!! NOT CONFIDENTIAL" in out
    assert "warning: XFAM does not enable AMX" in out


def test_evidence_lists_the_items_of_a_results_file(attested, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = attested
    assert run_cli(evidence_command, path) == 0
    out = capsys.readouterr().out
    assert "evidence #1 (/dev/tdx_guest ioctl TDX_CMD_GET_REPORT0): TDREPORT" in out
    assert "evidence #2 (configfs-tsm" in out


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x7fELF not evidence at all", "not recognised as evidence"),
        (
            b"\x04\x00\x02\x00\x81\x00\x00\x00" + bytes(100),
            "MRSEAM at offset 64 (0x40) needs 48 bytes, but the blob is 108 bytes long",
        ),
    ],
    ids=["garbage", "truncated-quote"],
)
def test_evidence_on_bad_files_exits_2(tmp_path: Path, capsys, blob: bytes, message: str) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    assert run_cli(evidence_command, path) == 2
    err = capsys.readouterr().err
    assert message in err
    assert str(path) in err
    assert run_cli(evidence_command, tmp_path / "missing.bin") == 2


def test_commands_are_registered_with_the_pytest_tee_cli(attested, capsys: pytest.CaptureFixture[str]) -> None:
    cli = pytest.importorskip("pytest_tee.cli")
    try:
        cli.build_parser()
    except ImportError as exc:
        pytest.skip(f"another part's command module is not in place yet: {exc}")
    path, _ = attested
    # The command line trusts only the vendors' roots: the simulated quote fails on the pin and on nothing else.
    assert cli.main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [
        "FAIL  tdx-quote: root pin: the chain ends in 'Simulated SGX Root CA' whose public key is not the pinned "
        "Intel SGX Root CA (vendor roots): a self-made or unknown root"
    ]
    assert cli.main(["verify", str(path.with_name("absent.json"))]) == 2
    assert "pytest-tee verify: error:" in capsys.readouterr().err
