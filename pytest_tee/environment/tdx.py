"""Intel TDX guest signals (reference/tee-interfaces.md §1), and the signs of a TDX *host*, which is not a guest.

Guest signals, strongest first: the ``tdx_guest`` cpuinfo flag (the kernel set it after matching CPUID 0x21 and a
working TDCALL), CPUID leaf 0x21 read from user space, ``/dev/tdx_guest`` (or a pre-upstream name), configfs-tsm
provider ``tdx_guest`` (tsm.py), v6.16 measurement registers in sysfs. The ACPI CCEL table is corroboration only.
A bare-metal host that *offers* TDX shows ``tdx_host_platform``, ``kvm_intel.tdx=Y`` and ``virt/tdx:`` log lines.
"""

from __future__ import annotations

from typing import Any

from pytest_tee.environment import cpuid
from pytest_tee.environment.host import CpuInfo
from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot

SIGNAL_FLAG = "cpuinfo flag tdx_guest"
SIGNAL_CPUID = "CPUID leaf 0x21"
SIGNAL_DEVICE = "TDX guest device"
SIGNAL_MEASUREMENTS = "tdx_guest measurement registers"
SIGNAL_CCEL = "ACPI CCEL table"
SIGNAL_HOST_FLAG = "cpuinfo flag tdx_host_platform"
SIGNAL_HOST_KVM = "kvm_intel tdx parameter"

DEVICES = ("/dev/tdx_guest", "/dev/tdx-guest", "/dev/tdx-attest")  # upstream (v6.2+), then pre-upstream names
MEASUREMENTS_DIR = "/sys/devices/virtual/misc/tdx_guest/measurements"
CCEL_TABLE = "/sys/firmware/acpi/tables/CCEL"
KVM_INTEL_TDX = "/sys/module/kvm_intel/parameters/tdx"

SIGNALS = (
    SIGNAL_FLAG,
    SIGNAL_CPUID,
    SIGNAL_DEVICE,
    SIGNAL_MEASUREMENTS,
    SIGNAL_CCEL,
    SIGNAL_HOST_FLAG,
    SIGNAL_HOST_KVM,
)


def _flag_evidence(cpu: CpuInfo) -> Evidence:
    if not cpu.known:
        return Evidence(SIGNAL_FLAG, "/proc/cpuinfo", cpu.unknown_finding)
    if "tdx_guest" in cpu.flags:
        return Evidence(SIGNAL_FLAG, "/proc/cpuinfo", "present", "tdx")
    return Evidence(SIGNAL_FLAG, "/proc/cpuinfo", "absent")


def _cpuid_evidence(sysroot: Sysroot, cpu: CpuInfo) -> Evidence:
    if cpu.vendor and cpu.vendor != "GenuineIntel":
        return Evidence(SIGNAL_CPUID, cpuid.CPUID_DEVICE, f"not probed ({cpu.vendor} CPU)")
    matched, finding = cpuid.tdx_signature(sysroot)
    if matched is None:
        if finding.startswith("unknown"):
            return Evidence(SIGNAL_CPUID, cpuid.CPUID_DEVICE, finding)
        hint = " (modprobe cpuid; needs root)" if finding == "absent" and sysroot.live else ""
        return Evidence(SIGNAL_CPUID, cpuid.CPUID_DEVICE, f"unreadable: {finding}{hint}")
    return Evidence(SIGNAL_CPUID, cpuid.CPUID_DEVICE, finding, "tdx" if matched else None)


def _device_evidence(sysroot: Sysroot) -> tuple[Evidence, str | None]:
    for path in DEVICES:
        kind = sysroot.node_kind(path)
        if kind is not None:
            return Evidence(SIGNAL_DEVICE, path, f"present ({kind})", "tdx"), path
    if not sysroot.captured("/dev"):
        return Evidence(SIGNAL_DEVICE, DEVICES[0], sysroot.absent("/dev")), None
    return Evidence(SIGNAL_DEVICE, DEVICES[0], f"absent (also no {', '.join(DEVICES[1:])})"), None


def _presence(sysroot: Sysroot, signal: str, path: str, supports: str) -> Evidence:
    kind = sysroot.node_kind(path)
    if kind is None:
        return Evidence(signal, path, sysroot.absent(path))
    return Evidence(signal, path, f"present ({kind})", supports)


def _host_evidence(sysroot: Sysroot, cpu: CpuInfo) -> list[Evidence]:
    # Recorded only when seen: on a guest these are noise, on a host they explain why tee is "none".
    items = []
    if "tdx_host_platform" in cpu.flags:
        items.append(Evidence(SIGNAL_HOST_FLAG, "/proc/cpuinfo", "present", "tdx-host"))
    kvm = sysroot.read_text(KVM_INTEL_TDX).stripped()
    if kvm is not None:
        items.append(Evidence(SIGNAL_HOST_KVM, KVM_INTEL_TDX, kvm, "tdx-host" if kvm in ("Y", "1") else None))
    return items


def probe(sysroot: Sysroot, cpu: CpuInfo) -> tuple[list[Evidence], dict[str, Any]]:
    """TDX evidence and the attestation interfaces found (for --tee-attest preflight)."""
    device_item, device = _device_evidence(sysroot)
    measurements = _presence(sysroot, SIGNAL_MEASUREMENTS, MEASUREMENTS_DIR, "tdx")
    items = [
        _flag_evidence(cpu),
        _cpuid_evidence(sysroot, cpu),
        device_item,
        measurements,
        _presence(sysroot, SIGNAL_CCEL, CCEL_TABLE, "tdx"),
        *_host_evidence(sysroot, cpu),
    ]
    interfaces = {"tdx_guest_device": device, "tdx_measurements": measurements.supports is not None}
    return items, interfaces
