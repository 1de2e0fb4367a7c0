"""AMD SEV-SNP guest signals (reference/tee-interfaces.md §4.1).

``/dev/sev-guest`` (v5.19+), the ``sev-guest`` platform device (what the CoCo agent checks), configfs-tsm provider
``sev_guest`` (tsm.py), ``SEV_STATUS`` (MSR 0xC0010131, which the hypervisor cannot intercept; sysfs copy in
≈v6.15) and ``/sys/devices/system/cpu/sev/vmpl`` (present only in SNP guests). The cpuinfo flags ``sev``,
``sev_es``, ``sev_snp`` are CPUID capability bits that an SNP *host* shows too: a hint, never a guest signal.
"""

from __future__ import annotations

import struct
from typing import Any

from pytest_tee.environment.host import CpuInfo
from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot

SIGNAL_DEVICE = "SEV guest device"
SIGNAL_PLATFORM = "sev-guest platform device"
SIGNAL_STATUS = "SEV_STATUS"
SIGNAL_VMPL = "SEV VMPL"
SIGNAL_FLAGS = "cpuinfo flags sev/sev_es/sev_snp"
SIGNAL_HOST_KVM = "kvm_amd sev_snp parameter"

DEVICE = "/dev/sev-guest"
PLATFORM_DEVICE = "/sys/devices/platform/sev-guest"
STATUS_FILE = "/sys/devices/system/cpu/sev/sev_status"
VMPL_FILE = "/sys/devices/system/cpu/sev/vmpl"
MSR_DEVICE = "/dev/cpu/0/msr"
SEV_STATUS_MSR = 0xC0010131
KVM_AMD_SNP = "/sys/module/kvm_amd/parameters/sev_snp"

SIGNALS = (SIGNAL_DEVICE, SIGNAL_PLATFORM, SIGNAL_STATUS, SIGNAL_VMPL, SIGNAL_FLAGS, SIGNAL_HOST_KVM)

# SEV_STATUS bits (AMD APM vol. 2, MSR C001_0131): which protections this guest runs with.
_STATUS_BITS = ((0, "SEV"), (1, "SEV-ES"), (2, "SEV-SNP"), (3, "vTOM"), (11, "Secure TSC"))


def decode_sev_status(value: int) -> tuple[str | None, str]:
    """(supports, description) for a SEV_STATUS value."""
    names = [name for bit, name in _STATUS_BITS if value >> bit & 1]
    description = f"{value:#x}" + (f" ({' '.join(names)})" if names else " (not an encrypted guest)")
    if value & 0b100:
        return "sev-snp", description
    if value & 0b010:
        return "sev-es", description
    if value & 0b001:
        return "sev", description
    return None, description


def _status_evidence(sysroot: Sysroot, cpu: CpuInfo) -> Evidence:
    text = sysroot.read_text(STATUS_FILE)
    if text.text is not None:
        try:
            value = int(text.text.strip(), 16)
        except ValueError:
            return Evidence(SIGNAL_STATUS, STATUS_FILE, f"unparsable ({text.text.strip()[:40]!r})")
        supports, description = decode_sev_status(value)
        return Evidence(SIGNAL_STATUS, STATUS_FILE, description, supports)
    # The MSR read is live-only (captured trees have no MSR file) and only worth trying on AMD.
    if sysroot.live and cpu.vendor == "AuthenticAMD":
        data, reason = sysroot.pread(MSR_DEVICE, 8, SEV_STATUS_MSR)
        if data is not None:
            supports, description = decode_sev_status(struct.unpack("<Q", data)[0])
            return Evidence(SIGNAL_STATUS, f"{MSR_DEVICE} (MSR {SEV_STATUS_MSR:#x})", description, supports)
        finding = f"{text.reason}; MSR {SEV_STATUS_MSR:#x} via {MSR_DEVICE}: {reason}"
        return Evidence(SIGNAL_STATUS, STATUS_FILE, finding)
    return Evidence(SIGNAL_STATUS, STATUS_FILE, text.reason)


def _flags_evidence(cpu: CpuInfo) -> Evidence:
    if not cpu.known:
        return Evidence(SIGNAL_FLAGS, "/proc/cpuinfo", cpu.unknown_finding)
    present = [flag for flag in ("sev", "sev_es", "sev_snp") if flag in cpu.flags]
    if not present:
        return Evidence(SIGNAL_FLAGS, "/proc/cpuinfo", "absent")
    finding = f"{' '.join(present)} (capability bits, hosts show them too: a hint)"
    return Evidence(SIGNAL_FLAGS, "/proc/cpuinfo", finding)


def _presence(sysroot: Sysroot, signal: str, path: str) -> Evidence:
    kind = sysroot.node_kind(path)
    if kind is None:
        return Evidence(signal, path, sysroot.absent(path))
    return Evidence(signal, path, f"present ({kind})", "sev-snp")


def probe(sysroot: Sysroot, cpu: CpuInfo) -> tuple[list[Evidence], dict[str, Any]]:
    device = _presence(sysroot, SIGNAL_DEVICE, DEVICE)
    vmpl_read = sysroot.read_text(VMPL_FILE)
    vmpl = vmpl_read.stripped()
    items = [
        device,
        _presence(sysroot, SIGNAL_PLATFORM, PLATFORM_DEVICE),
        _status_evidence(sysroot, cpu),
        Evidence(SIGNAL_VMPL, VMPL_FILE, vmpl_read.reason)
        if vmpl is None
        else Evidence(SIGNAL_VMPL, VMPL_FILE, f"VMPL {vmpl}", "sev-snp"),
        _flags_evidence(cpu),
    ]
    snp_host = sysroot.read_text(KVM_AMD_SNP).stripped()
    if snp_host is not None:
        supports = "sev-snp-host" if snp_host in ("Y", "1") else None
        items.append(Evidence(SIGNAL_HOST_KVM, KVM_AMD_SNP, snp_host, supports))
    return items, {"sev_guest_device": DEVICE if device.supports else None, "sev_vmpl": vmpl}
