"""Collecting evidence from a simulated TD / SNP guest / CC GPU, and recording every way collection can fail."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_tee.attestation import collect
from pytest_tee.attestation.binding import attest_document, early_posture, results_digest
from pytest_tee.attestation.collect import (
    AttestationIO,
    CollectionFailed,
    collect_evidence,
    collect_nvidia_reports,
    collect_tdreport,
    collect_tsm_report,
)
from pytest_tee.attestation.nvidia import build_fake_gpu_report, parse_nvidia_report
from pytest_tee.attestation.simulate import SimulatedSnpGuest, SimulatedTd
from pytest_tee.attestation.tdx import parse_quote, parse_tdreport

TESTDATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "tdx").resolve()
REPORT_DATA = hashlib.sha512(b"results").digest()


class FakeNvml:
    """The few pynvml calls collection makes, with pynvml's error-class naming."""

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # pynvml names its errors so
        pass

    class NVMLError_NoPermission(NVMLError):
        pass

    def __init__(self, *, gpus: int = 1, cc: bool = True, devtools: bool = False, init_error=None, report_error=None):
        self.gpus = gpus
        self.cc = cc
        self.devtools = devtools
        self.init_error = init_error
        self.report_error = report_error
        self.nonces: list[bytes] = []
        self.shutdown = False

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlSystemGetConfComputeState(self):
        return SimpleNamespace(environment=2, ccFeature=int(self.cc), devToolsMode=int(self.devtools))

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetConfComputeGpuAttestationReport(self, handle: int, nonce: bytes):
        if self.report_error:
            raise self.report_error
        self.nonces.append(bytes(nonce))
        report = build_fake_gpu_report(bytes(nonce))
        padded = list(report) + [0] * 64  # NVML hands back a fixed-size array and a size
        return SimpleNamespace(attestationReport=padded, attestationReportSize=len(report))

    def nvmlDeviceGetConfComputeGpuCertificate(self, handle: int):
        chain = b"-----BEGIN CERTIFICATE-----fake"
        return SimpleNamespace(attestationCertChain=list(chain) + [0] * 8, attestationCertChainSize=len(chain))


def no_gpu() -> FakeNvml:
    return FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound("NVML Shared Library Not Found"))


@pytest.fixture
def td(tmp_path: Path):
    with SimulatedTd(tmp_path / "td") as simulated:
        yield simulated


def test_tdreport_through_the_ioctl_carries_our_report_data(td: SimulatedTd) -> None:
    item = collect_tdreport(REPORT_DATA, sysroot=td.sysroot)
    report = parse_tdreport(item.raw)
    assert report.report_data == REPORT_DATA
    assert report.mrtd == td.identity.mrtd
    assert td.ioctl_calls == 1
    assert item.kind == "tdx-tdreport"


def test_quote_through_configfs_tsm_carries_our_report_data(td: SimulatedTd) -> None:
    item = collect_tsm_report(REPORT_DATA, sysroot=td.sysroot)
    quote = parse_quote(item.raw)
    assert item.kind == "tdx-quote"
    assert quote.report_data == REPORT_DATA
    assert td.requests == [REPORT_DATA]  # one write of exactly 64 bytes
    assert item.context == {"provider": "tdx_guest", "generation": 1}
    assert list(td.report_dir.iterdir()) == []  # the entry was removed


def test_quote_patched_from_a_real_sample(tmp_path: Path) -> None:
    sample = TESTDATA / "tdx_prod_quote_SPR_E4.dat"
    if not sample.is_file():
        pytest.skip(f"real TDX quote sample not found in {TESTDATA}")
    template = parse_quote(sample.read_bytes())
    with SimulatedTd(tmp_path / "td", quote_template=sample.read_bytes()) as simulated:
        quote = parse_quote(collect_tsm_report(REPORT_DATA, sysroot=simulated.sysroot).raw)
        report = parse_tdreport(collect_tdreport(REPORT_DATA, sysroot=simulated.sysroot).raw)
    assert quote.report_data == REPORT_DATA
    assert quote.mrtd == template.mrtd == report.mrtd
    assert quote.signature == template.signature
    assert quote.certification_data == template.certification_data


def test_a_bare_machine_records_why_nothing_was_collected(tmp_path: Path) -> None:
    collection = collect_evidence(REPORT_DATA, sysroot=tmp_path, nvml=no_gpu())
    assert collection.items == []
    reasons = {failure.kind: failure.reason for failure in collection.failures}
    assert reasons == {"tdx-tdreport": "no-device", "tsm-report": "no-provider", "nvidia-gpu-report": "no-device"}
    details = " ".join(failure.detail for failure in collection.failures)
    assert "/dev/tdx_guest is absent" in details
    assert "/sys/kernel/config/tsm/report is absent" in details


def test_configfs_without_a_provider_is_no_provider(tmp_path: Path) -> None:
    (tmp_path / "sys/kernel/config/tsm/report").mkdir(parents=True)

    def mkdir_without_provider(path: Path) -> None:
        raise OSError(errno.ENXIO, os.strerror(errno.ENXIO), str(path))

    io = AttestationIO(make_report_entry=mkdir_without_provider)
    with pytest.raises(CollectionFailed) as caught:
        collect_tsm_report(REPORT_DATA, sysroot=tmp_path, io=io)
    assert caught.value.reason == "no-provider"
    assert "ENXIO" in caught.value.detail


def test_permission_denied_is_recorded_as_permission(td: SimulatedTd) -> None:
    def denied(*args: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    io = AttestationIO(ioctl=denied, make_report_entry=denied)
    collection = collect_evidence(REPORT_DATA, sysroot=td.sysroot, io=io, gpu=False)
    assert {failure.reason for failure in collection.failures} == {"permission"}
    assert len(collection.failures) == 2


def test_a_hung_quote_service_times_out_and_the_tdreport_is_still_collected(tmp_path: Path) -> None:
    with SimulatedTd(tmp_path / "td", respond=False) as simulated:
        collection = collect_evidence(REPORT_DATA, sysroot=simulated.sysroot, timeout=0.3, gpu=False)
    assert [item.kind for item in collection.items] == ["tdx-tdreport"]
    (failure,) = collection.failures
    assert failure.reason == "timeout"
    assert "0.3 s" in failure.detail
    # Closing the simulator releases the collector thread that was left waiting on outblob.
    assert not any(thread.is_alive() for thread in simulated._threads)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        t.name == "pytest-tee configfs-tsm report" for t in threading.enumerate()
    ):
        time.sleep(0.01)
    assert not any(t.name == "pytest-tee configfs-tsm report" for t in threading.enumerate())


def test_another_writer_racing_inblob_is_a_conflict(tmp_path: Path) -> None:
    with SimulatedTd(tmp_path / "td", interloper=True) as simulated, pytest.raises(CollectionFailed) as caught:
        collect_tsm_report(REPORT_DATA, sysroot=simulated.sysroot)
    assert caught.value.reason == "conflict"
    assert "from 0 to 3" in caught.value.detail


def test_an_unsupported_provider_is_named(tmp_path: Path) -> None:
    class CcaRealm(SimulatedTd):
        provider = "arm_cca_guest"

    with CcaRealm(tmp_path / "realm") as realm, pytest.raises(CollectionFailed, match="arm_cca_guest") as caught:
        collect_tsm_report(REPORT_DATA, sysroot=realm.sysroot)
    assert caught.value.reason == "no-provider"
    assert realm.requests == []  # nothing was written to inblob
    assert not any(thread.is_alive() for thread in realm._threads)


def test_busy_ioctl_is_retried_and_eio_is_an_error(td: SimulatedTd) -> None:
    calls = []

    def busy_once(fd: int, request: int, buffer: bytearray) -> int:
        calls.append(request)
        if len(calls) == 1:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return td.io.ioctl(fd, request, buffer)

    item = collect_tdreport(REPORT_DATA, sysroot=td.sysroot, io=AttestationIO(ioctl=busy_once))
    assert parse_tdreport(item.raw).report_data == REPORT_DATA
    assert len(calls) == 2

    def broken(fd: int, request: int, buffer: bytearray) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with pytest.raises(CollectionFailed, match="EIO") as caught:
        collect_tdreport(REPORT_DATA, sysroot=td.sysroot, io=AttestationIO(ioctl=broken))
    assert caught.value.reason == "error"


def test_snp_guest_report_through_configfs_tsm(tmp_path: Path) -> None:
    with SimulatedSnpGuest(tmp_path / "snp") as guest:
        block = attest_document({"benchmarks": []}, sysroot=guest.sysroot, nvml=no_gpu())
    (item,) = block["evidence"]
    assert item["kind"] == "sev-snp-report"
    assert item["fields"]["report_data"] == block["report_data"]
    assert block["tee"] == "sev-snp"
    assert {failure["kind"]: failure["reason"] for failure in block["failures"]}["tdx-tdreport"] == "no-device"


def test_nvidia_gpu_reports_are_bound_by_the_first_half_of_report_data() -> None:
    nvml = FakeNvml(gpus=2, devtools=True)
    items, failures = collect_nvidia_reports(REPORT_DATA[:32], nvml=nvml)
    assert failures == []
    assert [item.context["index"] for item in items] == [0, 1]
    assert all(parse_nvidia_report(item.raw).nonce == REPORT_DATA[:32] for item in items)
    assert items[0].context["name"] == "NVIDIA H100 80GB HBM3"
    assert items[0].context["devtools_mode"] is True
    assert items[0].attachments["attestation_cert_chain"].startswith(b"-----BEGIN")
    assert nvml.shutdown


@pytest.mark.parametrize(
    ("nvml", "reason", "detail"),
    [
        (FakeNvml(cc=False), "no-device", "ccFeature = 0"),
        (FakeNvml(init_error=FakeNvml.NVMLError_LibraryNotFound("not found")), "no-device", "did not initialise"),
        (FakeNvml(report_error=FakeNvml.NVMLError_NoPermission("Insufficient Permissions")), "permission", "Insuff"),
    ],
    ids=["cc-off", "no-driver", "no-permission"],
)
def test_nvidia_failures_have_reasons(nvml: FakeNvml, reason: str, detail: str) -> None:
    items, failures = collect_nvidia_reports(REPORT_DATA[:32], nvml=nvml)
    assert items == []
    assert failures[0].reason == reason
    assert detail in failures[0].detail


def test_missing_nvidia_ml_py_is_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    items, failures = collect_nvidia_reports(REPORT_DATA[:32])
    assert items == []
    assert failures[0].reason == "no-provider"


def test_attest_document_returns_the_block_to_store(td: SimulatedTd) -> None:
    doc = {"benchmarks": [{"name": "decode", "stats": {"median": 4.0, "data": [4.0]}, "extra_info": {}}]}
    block = attest_document(doc, sysroot=td.sysroot, cpu_flags=["amx_bf16"], nvml=FakeNvml())
    assert block["scheme"] == "sha512-canonical-json-v1"
    assert block["report_data"] == results_digest(doc).hex()
    assert block["gpu_nonce"] == block["report_data"][:64]
    assert [item["kind"] for item in block["evidence"]] == ["tdx-tdreport", "tdx-quote", "nvidia-gpu-report"]
    assert block["tee"] == "tdx"
    assert block["failures"] == []
    quote = block["evidence"][1]
    assert quote["fields"]["mrtd"] == td.identity.mrtd.hex()
    assert quote["fields"]["report_data"] == block["report_data"]
    assert quote["format"] == "TD quote v4 (TDX 1.0 body)"
    assert [note["code"] for note in block["posture"]] == ["td-no-perfmon"]
    json.dumps(block)  # storable as it is
    assert "attestation" not in doc.get("pytest_tee", {})  # the caller stores it; doc is untouched


def test_the_attestation_block_holds_nothing_from_the_results(td: SimulatedTd) -> None:
    secret = "Confidential prompt: the merger closes on Friday"
    doc = {"benchmarks": [{"name": "t", "extra_info": {"note": secret}, "stats": {"median": 1.0}}]}
    block = attest_document(doc, sysroot=td.sysroot, nvml=no_gpu())
    text = json.dumps(block)
    assert secret not in text
    assert "merger" not in text
    assert block["evidence"]  # and yet it binds them


def test_early_posture_reads_a_tdreport_before_any_test(tmp_path: Path) -> None:
    with SimulatedTd(tmp_path / "td", debug=True) as simulated:
        notes = early_posture(simulated.sysroot)
    assert notes[0].code == "td-debug"
    assert early_posture(tmp_path / "bare") == []


def test_the_simulator_installs_its_io_only_while_open(tmp_path: Path) -> None:
    system = collect.default_io()
    with SimulatedTd(tmp_path / "td") as simulated:
        assert collect.default_io() is simulated.io
    assert collect.default_io().ioctl is system.ioctl
    assert collect._installed_io is None


def test_gpu_evidence_verifies_by_its_nonce(td: SimulatedTd) -> None:
    from pytest_tee.attestation.signatures import SignatureContext
    from pytest_tee.attestation.simulated_pki import SIMULATED_ANCHORS
    from pytest_tee.attestation.verify import verify_document

    simulated = SignatureContext(anchors=SIMULATED_ANCHORS)
    doc = {"benchmarks": [{"name": "decode[tdx-cuda]", "stats": {"median": 0.01}}], "pytest_tee": {"schema": 1}}
    doc["pytest_tee"]["attestation"] = attest_document(doc, sysroot=td.sysroot, nvml=FakeNvml(devtools=True))
    checks = verify_document(doc, signatures=simulated)
    gpu = {check.name: check.outcome for check in checks if check.subject == "nvidia-gpu-report"}
    assert gpu == {"structure": "pass", "GPU nonce": "pass", "signature": "note"}
    assert not any(check.failed for check in checks)
    assert "gpu-devtools" in [note["code"] for note in doc["pytest_tee"]["attestation"]["posture"]]
    doc["benchmarks"][0]["stats"]["median"] = 0.02
    failed = {(check.subject, check.name) for check in verify_document(doc, signatures=simulated) if check.failed}
    assert ("nvidia-gpu-report", "GPU nonce") in failed
