"""CPUID through ``/dev/cpu/0/cpuid`` (CONFIG_X86_CPUID, root): the same leaves the kernel and systemd read.

The device protocol (cpuid(4)): ``pread`` 16 bytes at offset ``leaf | subleaf << 32`` gives EAX, EBX, ECX, EDX.
A leaf above the CPU's maximum is *not* an error on Intel — it returns the highest basic leaf's data — so every
reader here checks the maximum leaf first.
"""

from __future__ import annotations

import struct

from pytest_tee.environment.sysroot import Sysroot

CPUID_DEVICE = "/dev/cpu/0/cpuid"
TDX_LEAF = 0x21
TDX_SIGNATURE = "IntelTDX    "
HYPERVISOR_LEAF = 0x40000000
HYPERV_FEATURES_LEAF = 0x40000003
HYPERV_ISOLATION_LEAF = 0x4000000C

Registers = tuple[int, int, int, int]  # eax, ebx, ecx, edx


def read_leaf(sysroot: Sysroot, leaf: int, subleaf: int = 0) -> tuple[Registers | None, str]:
    data, reason = sysroot.pread(CPUID_DEVICE, 16, leaf | (subleaf << 32))
    if data is None:
        return None, reason
    eax, ebx, ecx, edx = struct.unpack("<4I", data)
    return (eax, ebx, ecx, edx), "ok"


def _text(*registers: int) -> str:
    return b"".join(struct.pack("<I", value) for value in registers).decode("ascii", errors="replace")


def tdx_signature(sysroot: Sysroot) -> tuple[bool | None, str]:
    """(True, finding) when leaf 0x21 carries ``IntelTDX    ``; (None, why) when it could not be read."""
    basic, reason = read_leaf(sysroot, 0)
    if basic is None:
        return None, reason
    max_leaf = basic[0]
    if max_leaf < TDX_LEAF:
        return False, f"max basic leaf {max_leaf:#x} < 0x21: no TDX leaf"
    regs, reason = read_leaf(sysroot, TDX_LEAF)
    if regs is None:
        return None, f"leaf 0x21 {reason}"
    _, ebx, ecx, edx = regs
    signature = _text(ebx, edx, ecx)  # the kernel passes &sig[0], &sig[2], &sig[1] for ebx, ecx, edx
    if signature == TDX_SIGNATURE:
        return True, f"signature {signature!r}"
    if not (ebx or ecx or edx):
        return False, "leaf 0x21 reads all zero (no TDX signature; a paravisor may block it)"
    return False, f"signature {signature.rstrip()!r}, not {TDX_SIGNATURE!r}"


def hypervisor_vendor(sysroot: Sysroot) -> tuple[str | None, int | None, str]:
    """(vendor signature, max hypervisor leaf, reason) from leaf 0x40000000; only meaningful under a hypervisor."""
    regs, reason = read_leaf(sysroot, HYPERVISOR_LEAF)
    if regs is None:
        return None, None, reason
    eax, ebx, ecx, edx = regs
    vendor = _text(ebx, ecx, edx).rstrip("\x00 ")
    if not vendor or not vendor.isprintable():
        return None, eax, "no hypervisor signature"
    return vendor, eax, "ok"


def hyperv_isolation_type(sysroot: Sysroot) -> tuple[int | None, str]:
    """Hyper-V isolation type (2 = SEV-SNP, 3 = TDX, both under a paravisor) as systemd's confidential-virt reads it.

    Requires "Microsoft Hv" at 0x40000000 with max leaf in [0x40000005, 0x4000ffff], isolation (EBX bit 22) set and
    root partition (EBX bit 12) clear in 0x40000003; the type is EBX[3:0] of 0x4000000C.
    """
    vendor, max_leaf, reason = hypervisor_vendor(sysroot)
    if vendor is None or max_leaf is None:
        return None, reason
    if vendor != "Microsoft Hv":
        return None, f"hypervisor is {vendor!r}, not Hyper-V"
    if not 0x40000005 <= max_leaf <= 0x4000FFFF:
        return None, f"Hyper-V max leaf {max_leaf:#x} out of range"
    features, reason = read_leaf(sysroot, HYPERV_FEATURES_LEAF)
    if features is None:
        return None, reason
    ebx = features[1]
    if not ebx & (1 << 22) or ebx & (1 << 12):
        return 0, "Hyper-V without isolation"
    isolation, reason = read_leaf(sysroot, HYPERV_ISOLATION_LEAF)
    if isolation is None:
        return None, reason
    return isolation[1] & 0xF, "ok"
