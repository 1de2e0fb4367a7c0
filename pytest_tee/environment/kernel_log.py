"""Kernel-log lines as signals: read ``dmesg`` live (when permitted), ``SYSROOT/var/log/dmesg`` under a sysroot.

The ring buffer needs CAP_SYSLOG (or ``dmesg_restrict=0``) and may have rotated, so a missing line means
"not seen", never "not a TEE". Only lines that were found become evidence, plus one summary entry saying what
was read; the decision rule in :mod:`pytest_tee.environment.detection` says which of them suffice.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot

KERNEL_LOG_FILE = "/var/log/dmesg"
DMESG_TIMEOUT_S = 2.0

SIGNAL_LOG = "kernel log"
SIGNAL_TDX_GUEST = "kernel log: tdx: Guest detected"
SIGNAL_TDX_ATTRIBUTES = "kernel log: tdx: Attributes"
SIGNAL_MEM_ENCRYPT = "kernel log: Memory Encryption Features active"
SIGNAL_HYPERV_ISOLATION = "kernel log: Hyper-V Isolation Config"
SIGNAL_SYSTEMD_CVM = "kernel log: systemd Detected confidential virtualization"
SIGNAL_TDX_HOST = "kernel log: virt/tdx (TDX host)"
SIGNAL_SEV_STATUS = "kernel log: SEV: Status"
SIGNAL_SNP_DEVICE = "kernel log: SNP guest platform device"
SIGNAL_CCA = "kernel log: RME RSI"
SIGNAL_HYPERVISOR = "kernel log: Hypervisor detected"
SIGNAL_DMI = "kernel log: DMI"

# The TEE lines, in the order they are reported; check_claim lists these for every claim.
TEE_SIGNALS = (
    SIGNAL_LOG,
    SIGNAL_TDX_GUEST,
    SIGNAL_TDX_ATTRIBUTES,
    SIGNAL_MEM_ENCRYPT,
    SIGNAL_HYPERV_ISOLATION,
    SIGNAL_SYSTEMD_CVM,
    SIGNAL_TDX_HOST,
    SIGNAL_SEV_STATUS,
    SIGNAL_SNP_DEVICE,
    SIGNAL_CCA,
)

_PATTERNS: dict[str, re.Pattern[str]] = {
    "tdx_guest": re.compile(r"\btdx: Guest detected"),
    "tdx_attributes": re.compile(r"\btdx: Attributes:\s*(.*)"),
    "mem_encrypt": re.compile(r"Memory Encryption Features active:\s*(.*)"),
    "hyperv_isolation": re.compile(r"Hyper-V: Isolation Config: Group A (0x[0-9a-fA-F]+), Group B (0x[0-9a-fA-F]+)"),
    "systemd_cvm": re.compile(r"Detected confidential virtualization ([\w-]+)"),
    "tdx_host": re.compile(r"\b(?:virt/)?tdx: (?:TDX )?(module initialized|BIOS enabled: private KeyID range.*)"),
    "sev_status": re.compile(r"\bSEV: Status:\s*(.*)"),
    "snp_device": re.compile(r"\bSNP guest platform devices? initialized"),
    "cca": re.compile(r"\bRME: Using RSI version\s*(\S+)"),
    "hypervisor": re.compile(r"\bHypervisor detected:\s*(.*)"),
    "dmi": re.compile(r"\bDMI: (?!Memory slots)(.*)"),
    "swiotlb": re.compile(r"software IO TLB: mapped \[mem [^\]]*\] \((\d+)MB\)"),
}
_TIMESTAMP = re.compile(r"^\s*(?:<\d+>)?\[\s*[\d.]+\]\s*")
_HYPERV_ISOLATION_TYPES = {0: "none", 1: "VBS", 2: "SEV-SNP", 3: "TDX"}


@dataclass
class KernelLog:
    """The kernel log as read, and the first line matching each pattern (message text, timestamp removed)."""

    source: str  # "dmesg" or "/var/log/dmesg"
    lines: list[str] | None
    reason: str  # "ok" or why there are no lines
    found: dict[str, re.Match[str]] = field(default_factory=dict)

    @property
    def readable(self) -> bool:
        return self.lines is not None

    def message(self, key: str) -> str | None:
        match = self.found.get(key)
        return None if match is None else _TIMESTAMP.sub("", match.string).strip()

    def group(self, key: str, index: int = 1) -> str | None:
        match = self.found.get(key)
        return None if match is None else match.group(index).strip()

    @property
    def hyperv_isolation_type(self) -> int | None:
        group_b = self.group("hyperv_isolation", 2)
        return None if group_b is None else int(group_b, 16) & 0xF

    @property
    def swiotlb_mib(self) -> int | None:
        value = self.group("swiotlb")
        return None if value is None else int(value)


def parse_kernel_log(source: str, text: str) -> KernelLog:
    lines = text.splitlines()
    found: dict[str, re.Match[str]] = {}
    for line in lines:
        for key, pattern in _PATTERNS.items():
            if key not in found:
                match = pattern.search(line)
                if match:
                    found[key] = match
    return KernelLog(source=source, lines=lines, reason="ok", found=found)


def _run_dmesg() -> tuple[str | None, str]:
    try:
        done = subprocess.run(
            ["dmesg"],
            capture_output=True,
            timeout=DMESG_TIMEOUT_S,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except FileNotFoundError:
        return None, "dmesg is not installed"
    except subprocess.TimeoutExpired:
        return None, f"dmesg did not finish within {DMESG_TIMEOUT_S:g} s"
    except OSError as exc:
        return None, f"dmesg could not run ({exc.strerror or exc})"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return None, f"dmesg not permitted ({detail[0] if detail else f'exit {done.returncode}'})"
    return done.stdout.decode("utf-8", errors="replace"), "ok"


def read_kernel_log(sysroot: Sysroot) -> KernelLog:
    """Live: ``dmesg`` (falling back to /var/log/dmesg); under a sysroot: only ``SYSROOT/var/log/dmesg``."""
    dmesg_reason = ""
    if sysroot.live:
        text, dmesg_reason = _run_dmesg()
        if text is not None:
            return parse_kernel_log("dmesg", text)
    read = sysroot.read_text(KERNEL_LOG_FILE)
    if read.text is not None:
        return parse_kernel_log(KERNEL_LOG_FILE, read.text)
    reason = f"{dmesg_reason}; {KERNEL_LOG_FILE} {read.reason}" if dmesg_reason else f"{read.reason}"
    return KernelLog(source="dmesg" if sysroot.live else KERNEL_LOG_FILE, lines=None, reason=reason)


def _mem_encrypt_supports(features: str) -> str | None:
    if "Intel TDX" in features:
        return "tdx"
    if "SEV-SNP" in features:
        return "sev-snp"
    if "SEV-ES" in features:
        return "sev-es"
    if "AMD SEV" in features:
        return "sev"
    return None  # "AMD SME" is host memory encryption, not a guest TEE


def _sev_status_supports(status: str) -> str | None:
    words = status.split()
    for kind, label in (("SEV-SNP", "sev-snp"), ("SEV-ES", "sev-es"), ("SEV", "sev")):
        if kind in words:
            return label
    return None


_CVM_KINDS = {"tdx": "tdx", "sev-snp": "sev-snp", "sev-es": "sev-es", "sev": "sev", "cca": "cca"}


def evidence(log: KernelLog) -> list[Evidence]:
    """One summary entry, then one entry per TEE-relevant line found (platform lines are platform.py's)."""
    if not log.readable:
        reason = log.reason.removeprefix("unknown (").removesuffix(")") if log.reason else log.reason
        return [Evidence(SIGNAL_LOG, log.source, f"unavailable ({reason})")]
    items: list[Evidence] = []

    def add(signal: str, key: str, supports: str | None) -> None:
        message = log.message(key)
        if message is not None:
            items.append(Evidence(signal, log.source, message[:200], supports))

    isolation = log.hyperv_isolation_type
    add(SIGNAL_TDX_GUEST, "tdx_guest", "tdx")
    add(SIGNAL_TDX_ATTRIBUTES, "tdx_attributes", "tdx")
    mem_encrypt = log.group("mem_encrypt")
    add(SIGNAL_MEM_ENCRYPT, "mem_encrypt", _mem_encrypt_supports(mem_encrypt) if mem_encrypt else None)
    if isolation is not None:
        kind = _HYPERV_ISOLATION_TYPES.get(isolation, f"unknown type {isolation}")
        label = {3: "tdx", 2: "sev-snp", 1: "vbs"}.get(isolation)
        message = log.message("hyperv_isolation") or ""
        items.append(
            Evidence(SIGNAL_HYPERV_ISOLATION, log.source, f"{message} → isolation type {isolation} ({kind})", label)
        )
    cvm = log.group("systemd_cvm")
    add(SIGNAL_SYSTEMD_CVM, "systemd_cvm", _CVM_KINDS.get(cvm or ""))
    add(SIGNAL_TDX_HOST, "tdx_host", "tdx-host")
    status = log.group("sev_status")
    add(SIGNAL_SEV_STATUS, "sev_status", _sev_status_supports(status) if status else None)
    add(SIGNAL_SNP_DEVICE, "snp_device", "sev-snp")
    add(SIGNAL_CCA, "cca", "cca")
    summary = f"{len(log.lines or [])} lines read"
    if not items:
        summary += "; no TEE lines (tdx: Guest detected, Memory Encryption Features active, Hyper-V Isolation Config, "
        summary += "Detected confidential virtualization, SEV: Status)"
    return [Evidence(SIGNAL_LOG, log.source, summary), *items]
