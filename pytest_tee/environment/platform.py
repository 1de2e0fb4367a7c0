"""Where the machine runs: a cloud, a hypervisor, or bare metal (DMI, the hypervisor flag, CPUID, kernel log).

The decision (:func:`decide_platform`) takes the most specific signal first: a Hyper-V isolation type of 2 or 3
means an Azure confidential VM under the OpenHCL paravisor; DMI names the cloud (Google, Amazon, Azure's asset
tag); the hypervisor vendor (CPUID 0x40000000, ``Hypervisor detected:``, DMI ``QEMU``) names the hypervisor;
otherwise the cpuinfo ``hypervisor`` flag separates "vm" from "bare-metal" (x86 only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_tee.environment import cpuid
from pytest_tee.environment.host import CpuInfo
from pytest_tee.environment.kernel_log import SIGNAL_DMI, SIGNAL_HYPERVISOR, KernelLog
from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot

SIGNAL_HYPERVISOR_FLAG = "cpuinfo flag hypervisor"
SIGNAL_DMI_FILES = "DMI"
SIGNAL_CPUID_VENDOR = "CPUID hypervisor vendor"
SIGNAL_HYPERV_CPUID = "Hyper-V isolation type (CPUID 0x4000000C)"
SIGNAL_SYS_HYPERVISOR = "/sys/hypervisor/type"

SIGNALS = (SIGNAL_HYPERVISOR_FLAG, SIGNAL_DMI_FILES, SIGNAL_CPUID_VENDOR, SIGNAL_HYPERV_CPUID, SIGNAL_SYS_HYPERVISOR)

DMI_DIR = "/sys/class/dmi/id"
DMI_FIELDS = ("sys_vendor", "product_name", "bios_vendor", "bios_version", "chassis_asset_tag")
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"  # every Azure VM carries this chassis asset tag
X86_VENDORS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine")

_CPUID_VENDORS = {
    "KVMKVMKVM": "kvm",
    "Microsoft Hv": "hyper-v",
    "VMwareVMware": "vmware",
    "XenVMMXenVMM": "xen",
    "TCGTCGTCGTCG": "qemu-tcg",
    "ACRNACRNACRN": "acrn",
    "bhyve bhyve": "bhyve",
    "VBoxVBoxVBox": "virtualbox",
}
_LOG_VENDORS = (("KVM", "kvm"), ("Hyper-V", "hyper-v"), ("VMware", "vmware"), ("Xen", "xen"), ("ACRN", "acrn"))
_ISOLATION = {2: "sev-snp", 3: "tdx", 1: "vbs"}


@dataclass
class PlatformFacts:
    hypervisor_flag: bool | None = None
    x86: bool | None = None
    dmi: dict[str, str] = field(default_factory=dict)
    cpuid_vendor: str | None = None
    hyperv_isolation: int | None = None  # from CPUID, or from the kernel log's Isolation Config line
    sys_hypervisor: str | None = None
    log_hypervisor: str | None = None
    log_dmi: str | None = None
    log_vtom: bool = False  # "SEV: Status: … vTom": an SNP guest under Hyper-V's paravisor (virtual top of memory)
    log_tdx_host: bool = False  # "virt/tdx: module initialized": the kernel runs the TDX module, i.e. it is the host


def cloud_from_dmi(text: str, asset_tag: str | None = None) -> str | None:
    if "Google" in text:
        return "gcp"
    if "Amazon EC2" in text:
        return "aws"
    if "Microsoft Corporation" in text:
        return "azure" if asset_tag == AZURE_ASSET_TAG else "hyper-v"
    if "QEMU" in text or "KVM" in text:
        return "kvm"
    if "VMware" in text:
        return "vmware"
    if "Xen" in text:
        return "xen"
    return None


def _hypervisor_from_log(message: str) -> str | None:
    return next((name for needle, name in _LOG_VENDORS if needle in message), None)


def probe(sysroot: Sysroot, cpu: CpuInfo, log: KernelLog) -> tuple[list[Evidence], PlatformFacts]:
    facts = PlatformFacts(hypervisor_flag=cpu.has("hypervisor"), x86=(cpu.vendor in X86_VENDORS) if cpu.known else None)
    items: list[Evidence] = []

    if facts.hypervisor_flag is None:
        items.append(Evidence(SIGNAL_HYPERVISOR_FLAG, "/proc/cpuinfo", cpu.unknown_finding))
    else:
        items.append(
            Evidence(
                SIGNAL_HYPERVISOR_FLAG,
                "/proc/cpuinfo",
                "present" if facts.hypervisor_flag else "absent",
                "vm" if facts.hypervisor_flag else ("bare-metal" if facts.x86 else None),
            )
        )

    for name in DMI_FIELDS:
        value = sysroot.read_text(f"{DMI_DIR}/{name}").stripped()
        if value:
            facts.dmi[name] = value
    if facts.dmi:
        shown = "; ".join(f"{key}={value}" for key, value in facts.dmi.items() if key != "chassis_asset_tag")
        if facts.dmi.get("chassis_asset_tag") == AZURE_ASSET_TAG:
            shown += "; chassis_asset_tag=Azure"
        cloud = cloud_from_dmi(" ".join(facts.dmi.values()), facts.dmi.get("chassis_asset_tag"))
        items.append(Evidence(SIGNAL_DMI_FILES, DMI_DIR, shown, cloud))
    else:
        items.append(Evidence(SIGNAL_DMI_FILES, DMI_DIR, sysroot.absent(DMI_DIR)))

    if facts.hypervisor_flag is not False:
        vendor, _, reason = cpuid.hypervisor_vendor(sysroot)
        facts.cpuid_vendor = vendor
        finding = repr(vendor) if vendor else f"unreadable: {reason}"
        items.append(
            Evidence(
                SIGNAL_CPUID_VENDOR, f"{cpuid.CPUID_DEVICE} leaf 0x40000000", finding, _CPUID_VENDORS.get(vendor or "")
            )
        )
        if vendor == "Microsoft Hv":
            isolation, reason = cpuid.hyperv_isolation_type(sysroot)
            facts.hyperv_isolation = isolation
            finding = f"type {isolation}" if isolation is not None else f"unreadable: {reason}"
            items.append(
                Evidence(
                    SIGNAL_HYPERV_CPUID,
                    f"{cpuid.CPUID_DEVICE} leaf 0x4000000C",
                    finding,
                    _ISOLATION.get(isolation or 0),
                )
            )

    sys_hypervisor = sysroot.read_text(SIGNAL_SYS_HYPERVISOR).stripped()
    if sys_hypervisor:
        facts.sys_hypervisor = sys_hypervisor
        items.append(Evidence(SIGNAL_SYS_HYPERVISOR, SIGNAL_SYS_HYPERVISOR, sys_hypervisor, sys_hypervisor))

    if facts.hyperv_isolation is None:
        facts.hyperv_isolation = log.hyperv_isolation_type
    facts.log_hypervisor = log.group("hypervisor")
    facts.log_dmi = log.group("dmi")
    facts.log_vtom = "vtom" in (log.group("sev_status") or "").lower().split()
    facts.log_tdx_host = log.group("tdx_host") is not None
    if facts.log_hypervisor:
        items.append(
            Evidence(
                SIGNAL_HYPERVISOR,
                log.source,
                log.message("hypervisor") or "",
                _hypervisor_from_log(facts.log_hypervisor),
            )
        )
    if facts.log_dmi:
        items.append(Evidence(SIGNAL_DMI, log.source, (log.message("dmi") or "")[:200], cloud_from_dmi(facts.log_dmi)))
    return items, facts


def decide_platform(facts: PlatformFacts) -> str:
    """``azure-paravisor`` > cloud from DMI > hypervisor vendor > ``vm`` / ``bare-metal`` > ``unknown``.

    The paravisor is recognised by Hyper-V's isolation type, or by an SNP guest kernel reporting vTOM (only
    Hyper-V's paravisor runs SNP guests with a virtual top of memory); a kernel that initialised the TDX module
    is a TDX host, i.e. bare metal, unless it shows itself to be a VM.
    """
    if facts.hyperv_isolation in (2, 3) or facts.log_vtom:
        return "azure-paravisor"
    dmi_text = " ".join(facts.dmi.values())
    for text, tag in ((dmi_text, facts.dmi.get("chassis_asset_tag")), (facts.log_dmi or "", None)):
        cloud = cloud_from_dmi(text, tag)
        if cloud in ("gcp", "aws", "azure"):
            return cloud
    if facts.cpuid_vendor in _CPUID_VENDORS:
        return _CPUID_VENDORS[facts.cpuid_vendor]
    from_log = _hypervisor_from_log(facts.log_hypervisor or "")
    if from_log:
        return from_log
    for text in (dmi_text, facts.log_dmi or ""):
        hypervisor = cloud_from_dmi(text)
        if hypervisor:
            return hypervisor
    if facts.sys_hypervisor:
        return facts.sys_hypervisor.lower()
    if facts.hypervisor_flag:
        return "vm"
    if facts.hypervisor_flag is False and facts.x86:
        return "bare-metal"
    if facts.log_tdx_host:
        return "bare-metal"
    return "unknown"
