"""Environment detection over the sysroot trees in tests/sysroots, fake NVML, and this machine as it is."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tee.environment import cuda, tsm
from pytest_tee.environment.cpuid import tdx_signature
from pytest_tee.environment.detection import (
    check_claim,
    decide_tee,
    detect,
    execution_envs,
    header_line,
    render_text,
    unavailable_devices,
)
from pytest_tee.environment.host import cgroup_facts, parse_cpu_list, parse_cpuinfo
from pytest_tee.environment.kernel_log import parse_kernel_log
from pytest_tee.environment.record import Environment, Evidence
from pytest_tee.environment.sev import decode_sev_status
from pytest_tee.environment.sysroot import Sysroot
from tests.fakes.fake_nvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeCc, FakeGpu, make_fake_nvml

SYSROOTS = Path(__file__).parent / "sysroots"
TREES = sorted(path.name for path in SYSROOTS.iterdir() if path.is_dir())


def tree(name: str) -> Path:
    return SYSROOTS / name


def found(environment: Environment, supports: str) -> set[str]:
    return {item.signal for item in environment.evidence if item.supports == supports}


def finding(environment: Environment, signal: str) -> str:
    return next(item.finding for item in environment.evidence if item.signal == signal)


# ---------------------------------------------------------------------------------------------------------------
# Each tree is labelled by its evidence.

LABELS = {
    "kvm-tdx-guest": (
        "tdx",
        "kvm",
        {
            "cpuinfo flag tdx_guest",
            "CPUID leaf 0x21",
            "TDX guest device",
            "configfs-tsm provider",
            "kernel log: tdx: Guest detected",
        },
    ),
    "tdx-guest-no-device": ("tdx", "kvm", {"cpuinfo flag tdx_guest", "kernel log: tdx: Guest detected"}),
    "azure-tdx-guest": (
        "tdx",
        "azure-paravisor",
        {"kernel log: Hyper-V Isolation Config", "kernel log: Memory Encryption Features active"},
    ),
    "sev-snp-guest": (
        "sev-snp",
        "gcp",
        {"SEV guest device", "sev-guest platform device", "SEV_STATUS", "SEV VMPL", "configfs-tsm provider"},
    ),
    "plain-vm": ("none", "kvm", set()),
    "tdx-host": ("none", "bare-metal", set()),
    "partial-dmesg-only": ("tdx", "gcp", {"kernel log: tdx: Guest detected"}),
    "partial-cpuinfo-only": ("tdx", "vm", {"cpuinfo flag tdx_guest"}),
    "tdx-guest-h100": ("tdx", "gcp", {"cpuinfo flag tdx_guest", "TDX guest device", "configfs-tsm provider"}),
}


def test_every_tree_has_an_expected_label():
    assert set(LABELS) == set(TREES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LABELS))
def test_tree_is_labelled_by_its_evidence(name: str):
    tee, platform, key_signals = LABELS[name]
    environment = detect(tree(name))
    assert (environment.tee, environment.platform) == (tee, platform)
    assert key_signals <= found(environment, tee)
    assert environment.sysroot == str(tree(name))
    assert re.fullmatch(r"[0-9a-f]{16}", environment.fingerprint)


def test_azure_guest_has_no_tdx_leaf_flag_or_device():
    environment = detect(tree("azure-tdx-guest"))
    assert finding(environment, "cpuinfo flag tdx_guest") == "absent"
    assert "all zero" in finding(environment, "CPUID leaf 0x21")
    assert finding(environment, "TDX guest device").startswith("absent")
    assert "isolation type 3 (TDX)" in finding(environment, "kernel log: Hyper-V Isolation Config")
    assert any("vTPM" in warning for warning in environment.warnings)


def test_tdx_host_is_not_a_guest():
    environment = detect(tree("tdx-host"))
    assert found(environment, "tdx-host") >= {
        "cpuinfo flag tdx_host_platform",
        "kvm_intel tdx parameter",
        "kernel log: virt/tdx (TDX host)",
    }
    assert not found(environment, "tdx")
    assert any("TDX host" in warning for warning in environment.warnings)
    assert [env.name for env in execution_envs(environment)] == ["cpu"]


def test_guest_without_the_module_warns_that_attestation_is_unavailable():
    environment = detect(tree("tdx-guest-no-device"))
    assert finding(environment, "TDX guest device") == "absent (also no /dev/tdx-guest, /dev/tdx-attest)"
    assert any("tdx_guest module" in warning for warning in environment.warnings)
    assert environment.host["tee_interfaces"]["tdx_guest_device"] is None


def test_sev_snp_guest_facts_and_hints():
    environment = detect(tree("sev-snp-guest"))
    assert finding(environment, "SEV_STATUS") == "0x7 (SEV SEV-ES SEV-SNP)"
    # cpuinfo capability bits are recorded but point nowhere: SNP hosts show them too.
    flags = next(item for item in environment.evidence if item.signal == "cpuinfo flags sev/sev_es/sev_snp")
    assert flags.supports is None
    assert "sev_snp" in flags.finding
    assert environment.host["tee_interfaces"]["sev_guest_device"] == "/dev/sev-guest"
    assert any("kvm-clock, not tsc" in warning for warning in environment.warnings)


def test_kvm_tdx_guest_host_facts_feed_the_fingerprint():
    environment = detect(tree("kvm-tdx-guest"))
    cpu = environment.host["cpu"]
    assert cpu["brand"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert (cpu["logical_cpus"], cpu["physical_cores"], cpu["sockets"]) == (16, 8, 1)
    assert cpu["amx"] is True
    assert cpu["avx512_bf16"] is True
    assert cpu["amx_int8"] is True
    assert cpu["affinity"] == "0-15"
    assert cpu["usable_cpus"] == 16
    # The service's 8-CPU limit is tighter than its parent's "max".
    assert environment.host["cgroup"] == {
        "version": 2,
        "cpu_quota": 8.0,
        "source": "/sys/fs/cgroup/system.slice/actions-runner.service/cpu.max",
    }
    assert environment.host["numa"]["nodes"] == 1
    assert environment.host["memory"]["total_bytes"] == 65841224 * 1024
    assert environment.host["memory"]["unaccepted_bytes"] == 50331648 * 1024
    assert environment.host["memory"]["swiotlb_mib"] == 64
    assert environment.host["clocksource"] == "tsc"
    assert environment.host["kernel"] == "6.8.0-60-generic"
    assert any("GiB of memory not yet accepted" in warning for warning in environment.warnings)
    fields = environment.fingerprint_fields()
    assert fields["cpu_model"] == cpu["brand"]
    assert (fields["cpu_quota"], fields["numa_nodes"], fields["memory_total_gib"], fields["amx"]) == (8.0, 1, 63, True)
    assert environment.devices[0]["kind"] == "cpu"


def test_plain_vm_cgroup_v1_quota_numa_and_cmdline():
    environment = detect(tree("plain-vm"))
    assert environment.host["cgroup"]["version"] == 1
    assert environment.host["cgroup"]["cpu_quota"] == 2.0
    assert environment.host["numa"]["nodes"] == 2
    assert environment.host["numa"]["cpus"] == {"0": "0-3", "1": "4-7"}
    assert environment.host["clocksource"] == "kvm-clock"
    assert environment.host["cmdline"] == {"transparent_hugepage": "madvise"}
    assert environment.warnings == []


def test_eager_acceptance_is_recorded_and_quiet():
    environment = detect(tree("tdx-guest-no-device"))
    assert environment.host["cmdline"] == {"accept_memory": "eager"}
    assert environment.host["memory"]["unaccepted_bytes"] == 0
    assert not any("not yet accepted" in warning for warning in environment.warnings)


def test_different_machines_have_different_fingerprints():
    fingerprints = {detect(tree(name)).fingerprint for name in ("kvm-tdx-guest", "plain-vm", "sev-snp-guest")}
    assert len(fingerprints) == 3
    assert detect(tree("plain-vm")).fingerprint == detect(tree("plain-vm")).fingerprint


def test_environment_round_trips_through_its_dict():
    environment = detect(tree("kvm-tdx-guest"))
    again = Environment.from_dict(environment.to_dict())
    assert again.fingerprint == environment.fingerprint
    assert again.evidence == environment.evidence


# ---------------------------------------------------------------------------------------------------------------
# Partial and broken sysroots never raise.


@pytest.mark.parametrize("name", ["partial-dmesg-only", "partial-cpuinfo-only"])
def test_partial_sysroot_reports_unknown_not_absent(name: str):
    environment = detect(tree(name))
    device = finding(environment, "TDX guest device")
    assert device == "unknown (no /dev in the sysroot)"
    assert not any("attest" in warning for warning in environment.warnings)


def test_partial_dmesg_only_has_no_host_facts_but_a_label():
    environment = detect(tree("partial-dmesg-only"))
    assert environment.host["cpu"]["brand"] is None
    assert environment.host["cpu"]["amx"] is None
    assert environment.host["memory"]["total_bytes"] is None
    assert environment.host["memory"]["swiotlb_mib"] == 64
    assert finding(environment, "cpuinfo flag tdx_guest") == "unknown (no /proc in the sysroot)"


def test_missing_sysroot_is_a_warning_not_an_exception(tmp_path: Path):
    environment = detect(tmp_path / "nowhere")
    assert environment.tee == "none"
    assert environment.platform == "unknown"
    assert any("not a directory" in warning for warning in environment.warnings)


def test_broken_files_become_findings(tmp_path: Path):
    (tmp_path / "proc" / "cpuinfo").mkdir(parents=True)  # a directory where a file should be
    (tmp_path / "proc" / "meminfo").write_bytes(b"\xff\xfe garbage \x00\n")
    (tmp_path / "var" / "log").mkdir(parents=True)
    (tmp_path / "var" / "log" / "dmesg").write_bytes(b"\xff\x00[ 0.0] tdx: Guest detected\n")
    environment = detect(tmp_path)
    assert "EISDIR" in finding(environment, "cpuinfo flag tdx_guest")
    assert environment.host["memory"]["total_bytes"] is None
    assert environment.tee == "tdx"  # the log line survives undecodable bytes around it


def test_symlink_out_of_the_sysroot_is_not_followed(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").symlink_to("/proc/cpuinfo")
    environment = detect(tmp_path)
    assert "symlink leaves the sysroot" in finding(environment, "cpuinfo flag tdx_guest")
    assert environment.host["cpu"]["brand"] is None


def test_a_failing_probe_costs_only_its_own_facts(monkeypatch: pytest.MonkeyPatch):
    def broken(*args: object) -> None:
        raise RuntimeError("driver bug")

    monkeypatch.setattr(cuda, "probe", broken)
    environment = detect(tree("kvm-tdx-guest"))
    assert environment.tee == "tdx"
    assert finding(environment, "cuda probe") == "failed: RuntimeError: driver bug"
    assert any("cuda probe failed" in warning for warning in environment.warnings)


# ---------------------------------------------------------------------------------------------------------------
# The claim check.


def test_unsupported_tdx_claim_lists_each_signal_checked():
    message = check_claim(detect(tree("plain-vm")), "tdx")
    assert message is not None
    first, *rest = message.splitlines()
    assert first.startswith("--tee=tdx is not supported by the evidence")
    assert "detected tee: none" in first
    body = "\n".join(rest)
    for line in (
        "cpuinfo flag tdx_guest [/proc/cpuinfo]: absent",
        "CPUID leaf 0x21 [/dev/cpu/0/cpuid]: unknown (no /dev in the sysroot)",
        "configfs-tsm provider [/sys/kernel/config/tsm/report]: absent (configfs not mounted)",
        "kernel log [/var/log/dmesg]: 15 lines read; no TEE lines",
        "cpuinfo flag hypervisor [/proc/cpuinfo]: present",
    ):
        assert line in body
    assert "SEV guest device" not in body


def test_unsupported_sev_claim_on_a_td_lists_sev_signals():
    message = check_claim(detect(tree("kvm-tdx-guest")), "sev-snp")
    assert message is not None
    assert "detected tee: tdx" in message.splitlines()[0]
    assert "SEV guest device [/dev/sev-guest]: absent" in message
    assert "SEV VMPL [/sys/devices/system/cpu/sev/vmpl]: absent" in message


def test_tdx_claim_on_a_tdx_host_says_it_is_a_host():
    message = check_claim(detect(tree("tdx-host")), "tdx")
    assert message is not None
    assert "TDX host, not a trust domain" in message


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "claim"),
    [
        ("kvm-tdx-guest", "tdx"),
        ("azure-tdx-guest", "tdx"),
        ("sev-snp-guest", "sev-snp"),
        ("plain-vm", "auto"),
        ("plain-vm", "none"),
        ("kvm-tdx-guest", "none"),
        ("kvm-tdx-guest", "auto"),
    ],
)
def test_supported_claims_pass(name: str, claim: str):
    assert check_claim(detect(tree(name), claim=claim), claim) is None


def test_none_claim_in_a_td_is_recorded_as_a_warning():
    environment = detect(tree("kvm-tdx-guest"), claim="none")
    assert environment.tee == "tdx"
    assert environment.claim == "none"
    assert any(
        warning.startswith("--tee=none") and "labelled by the evidence (tdx)" in warning
        for warning in environment.warnings
    )
    assert not any(w.startswith("--tee=none") for w in detect(tree("kvm-tdx-guest")).warnings)


def test_unknown_claim_gets_a_message():
    message = check_claim(detect(tree("plain-vm")), "sgx")
    assert message is not None
    assert "auto, none, tdx or sev-snp" in message


# ---------------------------------------------------------------------------------------------------------------
# The decision rule.


def test_corroborating_signals_alone_do_not_label():
    evidence = [Evidence("ACPI CCEL table", "/sys/firmware/acpi/tables/CCEL", "present", "tdx")]
    assert decide_tee(evidence) == ("none", [])


def test_conflicting_evidence_majority_or_none():
    tdx = Evidence("cpuinfo flag tdx_guest", "/proc/cpuinfo", "present", "tdx")
    snp = Evidence("SEV guest device", "/dev/sev-guest", "present", "sev-snp")
    tee, warnings = decide_tee([tdx, snp])
    assert tee == "none"
    assert "conflicting TEE evidence" in warnings[0]
    tee, warnings = decide_tee([tdx, Evidence("TDX guest device", "/dev/tdx_guest", "present", "tdx"), snp])
    assert tee == "tdx"
    assert "tdx: 2 signals" in warnings[0]


def test_sev_es_only_is_none_with_a_warning():
    tee, warnings = decide_tee([Evidence("SEV_STATUS", "x", "0x3 (SEV SEV-ES)", "sev-es")])
    assert tee == "none"
    assert "SEV-ES guest signals" in warnings[0]


# ---------------------------------------------------------------------------------------------------------------
# Parsers.


def test_kernel_log_lines_and_hyperv_isolation_type():
    log = parse_kernel_log(
        "dmesg",
        "[    0.000000] DMI: Memory slots populated: 1/1\n"
        "[    0.000000] DMI: Microsoft Corporation Virtual Machine/Virtual Machine, BIOS Hyper-V UEFI\n"
        "[    0.000000] Hyper-V: Isolation Config: Group A 0x1, Group B 0xba2\n"
        "[    0.02] Memory Encryption Features active: AMD SME\n"
        "[    3.1] systemd[1]: Detected confidential virtualization sev-snp.\n",
    )
    assert log.hyperv_isolation_type == 2
    assert log.group("dmi", 1).startswith("Microsoft Corporation")
    assert log.group("systemd_cvm") == "sev-snp"
    assert log.message("mem_encrypt") == "Memory Encryption Features active: AMD SME"


def test_sev_status_decoding():
    assert decode_sev_status(0x7) == ("sev-snp", "0x7 (SEV SEV-ES SEV-SNP)")
    assert decode_sev_status(0x807)[1] == "0x807 (SEV SEV-ES SEV-SNP Secure TSC)"
    assert decode_sev_status(0x3)[0] == "sev-es"
    assert decode_sev_status(0) == (None, "0x0 (not an encrypted guest)")


def test_cpuinfo_and_cpu_list_parsing():
    info = parse_cpuinfo("processor\t: 0\nflags\t\t: fpu amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu amx_tile\n")
    assert (info.logical_cpus, info.brand, info.has("amx_tile"), info.physical_cores) == (2, None, True, None)
    assert parse_cpu_list("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("zero") is None


def test_cgroup_v2_without_own_path_reads_the_namespace_root(tmp_path: Path):
    (tmp_path / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup" / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "sys" / "fs" / "cgroup" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_facts(Sysroot(tmp_path))["cpu_quota"] == 1.5


def test_cpuid_max_leaf_is_checked_before_leaf_0x21(tmp_path: Path):
    device = tmp_path / "dev" / "cpu" / "0" / "cpuid"
    device.parent.mkdir(parents=True)
    content = bytearray((tree("kvm-tdx-guest") / "dev/cpu/0/cpuid").read_bytes())
    content[0] = 0x20  # max basic leaf below 0x21: the signature bytes must not be trusted
    device.write_bytes(bytes(content))
    assert tdx_signature(Sysroot(tmp_path)) == (False, "max basic leaf 0x20 < 0x21: no TDX leaf")
    assert tdx_signature(Sysroot(tree("kvm-tdx-guest"))) == (True, "signature 'IntelTDX    '")


# ---------------------------------------------------------------------------------------------------------------
# configfs-tsm: read-only under a sysroot; mkdir/read/rmdir only on a live system.


def test_tsm_under_a_sysroot_creates_nothing(tmp_path: Path):
    copy = tmp_path / "root"
    shutil.copytree(tree("kvm-tdx-guest"), copy)
    before = sorted(str(path) for path in copy.rglob("*"))
    item, provider = tsm.probe(Sysroot(copy))
    assert (item.finding, provider) == ("provider tdx_guest", "tdx_guest")
    assert sorted(str(path) for path in copy.rglob("*")) == before


def test_tsm_without_captured_entries_is_unknown(tmp_path: Path):
    (tmp_path / "sys" / "kernel" / "config" / "tsm" / "report").mkdir(parents=True)
    item, provider = tsm.probe(Sysroot(tmp_path))
    assert provider is None
    assert "unknown" in item.finding
    assert item.supports is None


def live_sysroot(path: Path) -> Sysroot:
    root = Sysroot(path)
    root.live = True  # exercise the live code path on a scratch directory
    return root


def test_live_tsm_probe_removes_its_entry(tmp_path: Path):
    report = tmp_path / "sys" / "kernel" / "config" / "tsm" / "report"
    report.mkdir(parents=True)
    item, provider = tsm.probe(live_sysroot(tmp_path))
    assert provider is None
    assert item.finding == "unavailable: entry created but provider unreadable"
    assert list(report.iterdir()) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENXIO, "unavailable: no provider registered (mkdir: ENXIO)"),
        (errno.EACCES, "unavailable: mkdir not permitted (needs root)"),
        (errno.ENOENT, "unavailable: mkdir absent"),
    ],
)
def test_live_tsm_errors_mean_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, expected: str):
    (tmp_path / "sys" / "kernel" / "config" / "tsm" / "report").mkdir(parents=True)

    def refuse(path: object, *args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tsm.os, "mkdir", refuse)
    item, provider = tsm.probe(live_sysroot(tmp_path))
    assert (item.finding, item.supports, provider) == (expected, None, None)


# ---------------------------------------------------------------------------------------------------------------
# CUDA through a fake NVML.


def test_cc_gpu_ready_is_a_usable_tdx_cuda_environment():
    nvml = make_fake_nvml(cc=FakeCc())
    environment = detect(tree("tdx-guest-h100"), nvml=nvml)
    gpu = environment.devices[1]
    assert {key: gpu[key] for key in ("kind", "index", "name", "memory_total_mib", "driver", "cc_mode", "usable")} == {
        "kind": "cuda",
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total_mib": 81559,
        "driver": "550.90.07",
        "cc_mode": "on",
        "usable": True,
    }
    assert gpu["cc"]["environment"] == "production"
    assert gpu["cc"]["ready"] is True
    assert gpu["cc"]["cpu_caps"] == "INTEL_TDX"
    assert gpu["compute_capability"] == "9.0"
    assert [env.name for env in execution_envs(environment)] == ["tdx", "tdx-cuda"]
    assert environment.fingerprint_fields()["gpus"][0]["cc_mode"] == "on"
    assert finding(environment, "NVML confidential computing") == "CC on, environment production, GPUs ready"
    assert nvml.calls[-1] == "nvmlShutdown"
    assert nvml.state.refcount == 0
    assert "1× NVIDIA H100 80GB HBM3 (CC on)" in header_line(environment)


def test_cc_gpu_not_ready_is_not_usable_and_says_why():
    environment = detect(tree("tdx-guest-h100"), nvml=make_fake_nvml(cc=FakeCc(ready=0)))
    gpu = environment.devices[1]
    assert gpu["usable"] is False
    assert "not ready" in gpu["reason"]
    assert [env.name for env in execution_envs(environment)] == ["tdx"]
    reasons = unavailable_devices(environment, ("cuda",))
    assert list(reasons) == ["cuda"]
    assert "not ready" in reasons["cuda"]
    assert any("is not usable" in warning for warning in environment.warnings)


def test_devtools_mode_is_recorded_and_warned():
    environment = detect(tree("tdx-guest-h100"), nvml=make_fake_nvml(cc=FakeCc(devtools=1)))
    assert environment.devices[1]["cc_mode"] == "devtools"
    assert environment.devices[1]["usable"] is True
    assert any("devtools mode" in warning for warning in environment.warnings)


def test_non_cc_gpu_in_a_td_is_outside_the_boundary():
    environment = detect(tree("tdx-guest-h100"), nvml=make_fake_nvml(cc=None))
    assert environment.devices[1]["cc_mode"] == "unsupported"
    assert environment.devices[1]["usable"] is True
    assert any("outside the tdx boundary" in warning for warning in environment.warnings)


def test_without_nvml_a_sysroot_driver_is_recorded_but_no_gpu_is_offered():
    environment = detect(tree("tdx-guest-h100"))
    assert finding(environment, "NVIDIA kernel driver") == "550.90.07"
    assert finding(environment, "NVML").startswith("not queried (a sysroot describes another machine")
    assert [device["kind"] for device in environment.devices] == ["cpu"]
    reason = unavailable_devices(environment, ("cuda",))["cuda"]
    assert reason.startswith("GPUs are not enumerated under a sysroot")
    assert "550.90.07" in reason


def test_nvml_init_failure_is_a_finding():
    environment = detect(tree("plain-vm"), nvml=make_fake_nvml(init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    assert finding(environment, "NVML") == "nvmlInit failed: NVML Shared Library Not Found"
    assert [device["kind"] for device in environment.devices] == ["cpu"]


def test_several_gpus_are_named_by_index_and_filtered_by_device():
    gpus = (FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="GPU-bbbb"))
    environment = detect(tree("plain-vm"), nvml=make_fake_nvml(gpus=gpus, cc=None))
    assert [env.name for env in execution_envs(environment)] == ["cpu", "cuda:0", "cuda:1"]
    assert [(env.name, env.torch_device) for env in execution_envs(environment, ("cuda",))] == [
        ("cuda:0", "cuda:0"),
        ("cuda:1", "cuda:1"),
    ]
    assert [env.name for env in execution_envs(environment, ("cpu",))] == ["cpu"]
    assert unavailable_devices(environment, ("cpu", "cuda")) == {}


def test_live_torch_view_decides_usability_and_index(monkeypatch: pytest.MonkeyPatch):
    gpus = (FakeGpu(uuid="GPU-aaaa"), FakeGpu(uuid="GPU-bbbb"))
    # torch sees only the second GPU (CUDA_VISIBLE_DEVICES=1), as its device 0.
    seen = cuda.TorchReport(True, "1 device(s)", [{"torch_index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "bbbb"}])
    monkeypatch.setattr(cuda, "torch_cuda_devices", lambda: seen)
    environment = detect("/", nvml=make_fake_nvml(gpus=gpus, cc=None))
    first, second = environment.devices[1:]
    assert first["usable"] is False
    assert "torch cannot use it" in first["reason"]
    assert first["index"] is None
    assert any(warning.startswith("NVML GPU 0 NVIDIA H100") for warning in environment.warnings)
    assert (second["usable"], second["index"], second["nvml_index"]) == (True, 0, 1)


def test_torch_devices_match_nvml_by_uuid_else_by_order():
    nvml_gpus = [{"uuid": "GPU-AAAA"}, {"uuid": "GPU-bbbb"}]
    torch_gpus = [{"torch_index": 0, "uuid": "bbbb"}, {"torch_index": 1, "uuid": "aaaa"}]
    assert cuda.match_torch_devices(nvml_gpus, torch_gpus) == [torch_gpus[1], torch_gpus[0]]
    unrelated = [{"torch_index": 0, "uuid": "x"}, {"torch_index": 1, "uuid": None}]
    assert cuda.match_torch_devices(nvml_gpus, unrelated) == unrelated  # no UUID agrees, counts do: by order
    assert cuda.match_torch_devices(nvml_gpus, unrelated[:1]) == [None, None]


# ---------------------------------------------------------------------------------------------------------------
# Execution environments per tree.


@pytest.mark.parametrize(
    ("name", "devices", "expected"),
    [
        ("kvm-tdx-guest", (), ["tdx"]),
        ("azure-tdx-guest", ("cpu",), ["tdx"]),
        ("sev-snp-guest", (), ["sev-snp"]),
        ("plain-vm", (), ["cpu"]),
        ("plain-vm", ("cuda",), []),
        ("tdx-host", ("cpu", "cuda"), ["cpu"]),
        ("partial-dmesg-only", (), ["tdx"]),
    ],
)
def test_execution_envs(name: str, devices: tuple[str, ...], expected: list[str]):
    environment = detect(tree(name))
    envs = execution_envs(environment, devices)
    assert [env.name for env in envs] == expected
    assert all(env.tee == environment.tee and env.device == "cpu" for env in envs)


def test_asking_for_cuda_without_a_gpu_is_explained():
    reasons = unavailable_devices(detect(tree("plain-vm")), ("cuda",))
    assert list(reasons) == ["cuda"]
    assert "NVIDIA kernel driver (/proc/driver/nvidia/version): absent" in reasons["cuda"]
    assert unavailable_devices(detect(tree("plain-vm")), ("tpu",)) == {
        "tpu": "unknown device 'tpu'; devices are cpu, cuda"
    }


# ---------------------------------------------------------------------------------------------------------------
# Renderings.


def test_header_line_names_the_label_signals_cpu_and_clock():
    line = header_line(detect(tree("kvm-tdx-guest")))
    assert line.startswith("tee: tdx (kvm) — tdx_guest flag, CPUID 0x21, /dev/tdx_guest, tsm provider tdx_guest")
    assert "ACPI CCEL" not in line  # corroborating signals do not carry the label
    assert "Intel(R) Xeon(R) Platinum 8480+ 16 threads (quota 8 CPUs), AMX" in line
    assert "clocksource tsc" in line
    assert "\n" not in line
    assert header_line(detect(tree("tdx-host"))).startswith("tee: none (bare-metal) — TDX host, not a guest")


def test_render_text_has_every_section():
    text = render_text(detect(tree("sev-snp-guest")))
    for heading in ("Evidence", "Host", "Devices", "Execution environments", "Warnings"):
        assert f"\n{heading}\n" in text
    assert "SEV_STATUS" in text
    assert "→ sev-snp" in text
    assert "  sev-snp\n" in text


# ---------------------------------------------------------------------------------------------------------------
# This machine, as it is.


def _machine_has_tee_signals() -> bool:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    return "tdx_guest" in cpuinfo.split() or any(
        Path(path).exists() for path in ("/dev/tdx_guest", "/dev/sev-guest", "/sys/devices/platform/sev-guest")
    )


def test_this_machine_cpu_facts():
    environment = detect("/")
    cpu = environment.host["cpu"]
    assert cpu["logical_cpus"] == os.cpu_count()
    assert cpu["usable_cpus"] == len(os.sched_getaffinity(0))
    brand = re.search(r"^model name\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    assert cpu["brand"] == (re.sub(r"\s+", " ", brand.group(1)).strip() if brand else None)
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    assert meminfo is not None
    assert environment.host["memory"]["total_bytes"] == int(meminfo.group(1)) * 1024
    assert environment.host["kernel"] == os.uname().release
    assert environment.host["libraries"]["pytest"] == pytest.__version__
    if not _machine_has_tee_signals():
        assert environment.tee == "none"
        assert [env.name for env in execution_envs(environment, ("cpu",))] == ["cpu"]


@pytest.mark.slow
@pytest.mark.skipif(Path("/proc/driver/nvidia/version").exists(), reason="NVIDIA driver present: torch is consulted")
def test_detection_does_not_import_torch_without_nvidia_signals():
    code = "import sys; from pytest_tee.environment import detect; detect('/'); print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------------------
# details found by held-out captures


def test_unknown_cpu_features_are_shown_as_unknown_not_as_absent(tmp_path: Path):
    from pytest_tee.environment.env_output import render_text

    partial = render_text(detect(tree("partial-dmesg-only")))
    assert "no AMX/AVX-512" not in partial
    assert "CPU features unknown (no /proc/cpuinfo)" in partial
    (tmp_path / "proc").mkdir()  # cpuinfo read, no AMX or AVX-512 flags: that is "no"
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2\n")
    plain = render_text(detect(tmp_path))
    assert "no AMX/AVX-512" in plain
    assert "CPU features unknown" not in plain


def _dmesg_only(root: Path, *lines: str) -> Path:
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "dmesg").write_text("".join(f"[    0.{i:06d}] {line}\n" for i, line in enumerate(lines)))
    return root


def test_an_snp_guest_reporting_vtom_is_under_the_paravisor(tmp_path: Path):
    root = _dmesg_only(
        tmp_path,
        "Hypervisor detected: Microsoft Hyper-V",
        "Memory Encryption Features active: AMD SEV",
        "SEV: Status: vTom",
    )
    environment = detect(root)
    assert environment.platform == "azure-paravisor"
    assert finding(environment, "kernel log: SEV: Status") == "SEV: Status: vTom"


def test_a_kernel_that_initialised_the_tdx_module_is_a_bare_metal_host(tmp_path: Path):
    root = _dmesg_only(tmp_path, "virt/tdx: BIOS enabled: private KeyID range [16, 64)", "virt/tdx: module initialized")
    environment = detect(root)
    assert environment.tee == "none"
    assert environment.platform == "bare-metal"
    assert any(item.supports == "tdx-host" for item in environment.evidence)
    # A guest that merely mentions TDX is no host: the same log with a hypervisor line stays a VM.
    guest = _dmesg_only(tmp_path / "guest", "Hypervisor detected: KVM", "tdx: Guest detected")
    assert detect(guest).platform == "kvm"
