"""Host facts that decide whether two runs are comparable: CPU, CPU quota, NUMA, memory, clocks, kernel, libraries.

Everything is read through the sysroot from procfs/sysfs text (no py-cpuinfo call, no subprocess), so a captured
tree describes a remote machine and detection stays cheap. Library versions come from installed distribution
metadata (importing torch would cost seconds) and always describe the Python running the benchmarks.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

from pytest_tee.environment.sysroot import Sysroot

LIBRARIES = (
    "torch",
    "transformers",
    "accelerate",
    "safetensors",
    "tokenizers",
    "numpy",
    "pytest",
    "pytest-benchmark",
    "nvidia-ml-py",
    "pytest-tee",
)
# Kernel parameters that change what a benchmark measures (memory acceptance, DMA bouncing, clocks, isolation).
CMDLINE_KEYS = (
    "accept_memory",
    "swiotlb",
    "hpet",
    "clocksource",
    "tsc",
    "mem_encrypt",
    "transparent_hugepage",
    "numa_balancing",
    "isolcpus",
    "nohz_full",
)
CPU_FEATURES = ("amx_tile", "amx_bf16", "amx_int8", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx2")


@dataclass(frozen=True)
class CpuInfo:
    """What ``/proc/cpuinfo`` says; ``known`` is False when it could not be read (every field then None/empty)."""

    known: bool
    reason: str
    vendor: str | None = None
    brand: str | None = None
    flags: frozenset[str] = frozenset()
    logical_cpus: int | None = None
    physical_cores: int | None = None
    sockets: int | None = None

    @property
    def unknown_finding(self) -> str:
        """What a cpuinfo-based signal reports when cpuinfo could not be read."""
        return self.reason if self.reason.startswith("unknown") else f"unknown (/proc/cpuinfo {self.reason})"

    def has(self, flag: str) -> bool | None:
        """True/False when cpuinfo was read, None when unknown."""
        return (flag in self.flags) if self.known else None


def parse_cpuinfo(text: str) -> CpuInfo:
    processors: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor" and current:
            processors.append(current)
            current = {}
        current.setdefault(key, value)
    if current:
        processors.append(current)
    processors = [block for block in processors if "processor" in block] or processors
    first = processors[0] if processors else {}
    flags = frozenset((first.get("flags") or first.get("Features") or "").split())
    brand = first.get("model name")
    cores = {(block.get("physical id"), block["core id"]) for block in processors if "core id" in block}
    sockets = {block["physical id"] for block in processors if "physical id" in block}
    return CpuInfo(
        known=bool(processors),
        reason="ok" if processors else "no processor entries",
        vendor=first.get("vendor_id") or first.get("CPU implementer"),
        brand=re.sub(r"\s+", " ", brand).strip() if brand else None,
        flags=flags,
        logical_cpus=sum(1 for block in processors if "processor" in block) or None,
        physical_cores=len(cores) or None,
        sockets=len(sockets) or None,
    )


def read_cpuinfo(sysroot: Sysroot) -> CpuInfo:
    read = sysroot.read_text("/proc/cpuinfo")
    if read.text is None:
        return CpuInfo(known=False, reason=read.reason)
    return parse_cpuinfo(read.text)


def parse_cpu_list(text: str) -> list[int] | None:
    """``0-3,8,10-11`` → [0, 1, 2, 3, 8, 10, 11]; None when it does not parse."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            cpus.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            return None
    return cpus


def format_cpu_list(cpus: list[int]) -> str:
    """[0, 1, 2, 3, 8] → ``0-3,8``."""
    ranges: list[list[int]] = []
    for cpu in sorted(set(cpus)):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def cpu_facts(sysroot: Sysroot, cpu: CpuInfo) -> dict[str, Any]:
    logical = cpu.logical_cpus
    if logical is None:
        online = sysroot.read_text("/sys/devices/system/cpu/online")
        listed = parse_cpu_list(online.text) if online.text else None
        logical = len(listed) if listed else None
    facts: dict[str, Any] = {
        "vendor": cpu.vendor,
        "brand": cpu.brand,
        "logical_cpus": logical,
        "physical_cores": cpu.physical_cores,
        "sockets": cpu.sockets,
        "hypervisor_flag": cpu.has("hypervisor"),
        "amx": (cpu.has("amx_tile") and cpu.has("amx_bf16")) if cpu.known else None,
        **{name: cpu.has(name) for name in CPU_FEATURES},
        "flags": sorted(cpu.flags),
        "source": "/proc/cpuinfo" if cpu.known else cpu.unknown_finding,
    }
    facts.update(affinity_facts(sysroot))
    return facts


def affinity_facts(sysroot: Sysroot) -> dict[str, Any]:
    """The CPUs this process may run on: sched_getaffinity live, ``Cpus_allowed_list`` of a captured status."""
    cpus: list[int] | None = None
    if sysroot.live and hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
    else:
        status = sysroot.read_text("/proc/self/status")
        match = re.search(r"^Cpus_allowed_list:\s*(\S+)", status.text or "", re.MULTILINE)
        cpus = parse_cpu_list(match.group(1)) if match else None
    if not cpus:
        return {"affinity": None, "usable_cpus": None}
    return {"affinity": format_cpu_list(cpus), "usable_cpus": len(cpus)}


def _cgroup_ancestors(path: str) -> list[str]:
    parts = [part for part in path.strip().split("/") if part]
    return ["/" + "/".join(parts[:depth]) if depth else "" for depth in range(len(parts), -1, -1)]


def _quota_v2(sysroot: Sysroot, cgroup_path: str) -> tuple[float | None, str | None]:
    limits: list[tuple[float, str]] = []
    found: str | None = None
    for ancestor in _cgroup_ancestors(cgroup_path):
        probed = f"/sys/fs/cgroup{ancestor}/cpu.max"
        text = sysroot.read_text(probed).stripped()
        if text is None:
            continue
        found = found or probed
        quota, _, period = text.partition(" ")
        if quota != "max":
            try:
                limits.append((int(quota) / int(period or 100000), probed))
            except (ValueError, ZeroDivisionError):
                continue
    if not limits:
        return None, found
    value, source = min(limits)
    return value, source


def _quota_v1(sysroot: Sysroot, cgroup_path: str, mount_names: list[str]) -> tuple[float | None, str | None]:
    limits: list[tuple[float, str]] = []
    found: str | None = None
    for mount in mount_names:
        for ancestor in _cgroup_ancestors(cgroup_path):
            base = f"/sys/fs/cgroup/{mount}{ancestor}"
            quota = sysroot.read_text(f"{base}/cpu.cfs_quota_us").stripped()
            period = sysroot.read_text(f"{base}/cpu.cfs_period_us").stripped()
            if quota is None:
                continue
            found = found or f"{base}/cpu.cfs_quota_us"
            try:
                if int(quota) > 0:
                    limits.append((int(quota) / int(period or 100000), f"{base}/cpu.cfs_quota_us"))
            except (ValueError, ZeroDivisionError):
                continue
        if found:
            break
    if not limits:
        return None, found
    value, source = min(limits)
    return value, source


def cgroup_facts(sysroot: Sysroot) -> dict[str, Any]:
    """The CFS CPU quota in CPUs (None = no limit or unknown), taking the tightest limit up the hierarchy.

    The cpu controller may sit on cgroup v1 even where a v2 hierarchy is mounted (hybrid layouts), so the
    controller's line in ``/proc/self/cgroup`` decides; inside a cgroup namespace the path is "/" and the
    mount root is the container's own group.
    """
    own = sysroot.read_text("/proc/self/cgroup").text or ""
    v1_path: str | None = None
    v1_mounts: list[str] = []
    v2_path: str | None = None
    version: int | None
    for line in own.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path, v1_mounts = path, [controllers, "cpu", "cpu,cpuacct"]
    if v1_path is not None:
        quota, source = _quota_v1(sysroot, v1_path, list(dict.fromkeys(v1_mounts)))
        version = 1
    elif v2_path is not None or sysroot.exists("/sys/fs/cgroup/cgroup.controllers"):
        quota, source = _quota_v2(sysroot, v2_path or "/")
        version = 2
    else:
        quota, source = _quota_v1(sysroot, "/", ["cpu", "cpu,cpuacct"])
        version = 1 if source else None
    return {
        "version": version,
        "cpu_quota": round(quota, 2) if quota is not None else None,
        "source": source,
    }


def numa_facts(sysroot: Sysroot) -> dict[str, Any]:
    online = sysroot.read_text("/sys/devices/system/node/online").stripped()
    nodes = parse_cpu_list(online) if online else None
    if nodes is None:
        entries, _ = sysroot.listdir("/sys/devices/system/node")
        nodes = sorted(int(name[4:]) for name in entries or [] if re.fullmatch(r"node\d+", name)) or None
    if not nodes:
        return {"nodes": None, "cpus": {}, "memory_bytes": {}}
    cpus: dict[str, str] = {}
    memory: dict[str, int] = {}
    for node in nodes:
        cpulist = sysroot.read_text(f"/sys/devices/system/node/node{node}/cpulist").stripped()
        if cpulist is not None:
            cpus[str(node)] = cpulist
        meminfo = sysroot.read_text(f"/sys/devices/system/node/node{node}/meminfo").text or ""
        match = re.search(r"MemTotal:\s+(\d+)\s*kB", meminfo)
        if match:
            memory[str(node)] = int(match.group(1)) * 1024
    return {"nodes": len(nodes), "cpus": cpus, "memory_bytes": memory}


def parse_meminfo(text: str) -> dict[str, int]:
    """``Key:  123 kB`` → {"Key": 125952} in bytes (counts without a unit, such as HugePages_Total, unchanged)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"([\w()]+):\s+(\d+)(\s*kB)?", line)
        if match:
            values[match.group(1)] = int(match.group(2)) * (1024 if match.group(3) else 1)
    return values


def memory_facts(sysroot: Sysroot) -> dict[str, Any]:
    read = sysroot.read_text("/proc/meminfo")
    info = parse_meminfo(read.text or "")
    return {
        "total_bytes": info.get("MemTotal"),
        "available_bytes": info.get("MemAvailable"),
        # Lazily accepted TD/SNP memory: the first touch of each 2 MiB pays the acceptance (None = kernel has none).
        "unaccepted_bytes": info.get("Unaccepted"),
        "hugepages_total": info.get("HugePages_Total"),
        "hugepage_size_bytes": info.get("Hugepagesize"),
        "source": "/proc/meminfo" if read.ok else f"/proc/meminfo {read.reason}",
    }


def clock_facts(sysroot: Sysroot) -> tuple[str | None, list[str]]:
    base = "/sys/devices/system/clocksource/clocksource0"
    current = sysroot.read_text(f"{base}/current_clocksource").stripped()
    available = sysroot.read_text(f"{base}/available_clocksource").stripped()
    return current or None, (available or "").split()


def thp_facts(sysroot: Sysroot) -> dict[str, str | None]:
    def selected(probed: str) -> str | None:
        text = sysroot.read_text(probed).stripped()
        if text is None:
            return None
        match = re.search(r"\[(\S+)\]", text)
        return match.group(1) if match else text

    base = "/sys/kernel/mm/transparent_hugepage"
    return {"enabled": selected(f"{base}/enabled"), "defrag": selected(f"{base}/defrag")}


def cmdline_facts(sysroot: Sysroot) -> dict[str, str] | None:
    text = sysroot.read_text("/proc/cmdline").text
    if text is None:
        return None
    kernel_part = text.split(" -- ", 1)[0]  # what follows "--" goes to init, not the kernel
    found: dict[str, str] = {}
    for word in kernel_part.split():
        key, sep, value = word.partition("=")
        if key in CMDLINE_KEYS:
            found[key] = value if sep else ""
    return found


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_host(sysroot: Sysroot, cpu: CpuInfo) -> dict[str, Any]:
    """The ``host`` part of the Environment (key names are what ``Environment.fingerprint_fields`` reads)."""
    clocksource, available = clock_facts(sysroot)
    return {
        "cpu": cpu_facts(sysroot, cpu),
        "cgroup": cgroup_facts(sysroot),
        "numa": numa_facts(sysroot),
        "memory": memory_facts(sysroot),
        "clocksource": clocksource,
        "clocksources_available": available,
        "kernel": sysroot.read_text("/proc/sys/kernel/osrelease").stripped(),
        "thp": thp_facts(sysroot),
        "cmdline": cmdline_facts(sysroot),
        "python": ".".join(str(part) for part in sys.version_info[:3]),
        "libraries": library_versions(),
    }
