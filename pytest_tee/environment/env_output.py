"""Human renderings of an Environment: one line for pytest's header, a table for ``pytest-tee env``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pytest_tee.environment import kernel_log, sev, tdx, tsm
from pytest_tee.environment.cuda import device_label
from pytest_tee.environment.record import Environment, Evidence

_SHORT = {
    kernel_log.SIGNAL_TDX_GUEST: "dmesg 'tdx: Guest detected'",
    kernel_log.SIGNAL_TDX_ATTRIBUTES: "dmesg TD attributes",
    kernel_log.SIGNAL_MEM_ENCRYPT: "dmesg memory encryption",
    kernel_log.SIGNAL_HYPERV_ISOLATION: "Hyper-V isolation (dmesg)",
    kernel_log.SIGNAL_SYSTEMD_CVM: "systemd cvm",
    kernel_log.SIGNAL_SEV_STATUS: "dmesg 'SEV: Status'",
    kernel_log.SIGNAL_SNP_DEVICE: "dmesg SNP platform device",
    tdx.SIGNAL_FLAG: "tdx_guest flag",
    tdx.SIGNAL_CPUID: "CPUID 0x21",
    tdx.SIGNAL_MEASUREMENTS: "RTMR sysfs",
    sev.SIGNAL_PLATFORM: "sev-guest platform device",
    sev.SIGNAL_STATUS: "SEV_STATUS",
    sev.SIGNAL_VMPL: "sev vmpl",
}
_MAX_HEADER_SIGNALS = 4


def short_label(item: Evidence) -> str:
    if item.signal in (tdx.SIGNAL_DEVICE, sev.SIGNAL_DEVICE):
        return item.source
    if item.signal == tsm.SIGNAL_TSM:
        return f"tsm {item.finding}"
    return _SHORT.get(item.signal, item.signal)


def _supporting(environment: Environment) -> list[Evidence]:
    """The signals that carried the label (corroborating ones left out)."""
    from pytest_tee.environment.detection import CORROBORATING

    return [
        item for item in environment.evidence if item.supports == environment.tee and item.signal not in CORROBORATING
    ]


def _gib(value: Any) -> str:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, (int, float)) else "?"


def _cpu_summary(host: dict[str, Any]) -> str:
    cpu = host.get("cpu") or {}
    text = f"CPU {cpu.get('brand') or 'unknown'}"
    if cpu.get("logical_cpus"):
        text += f" {cpu['logical_cpus']} threads"
    quota = (host.get("cgroup") or {}).get("cpu_quota")
    if quota is not None:
        text += f" (quota {quota:g} CPUs)"
    if cpu.get("amx"):
        text += ", AMX"
    elif cpu.get("avx512_bf16"):
        text += ", AVX512-BF16"
    return text


def _gpu_summary(devices: list[dict[str, Any]]) -> str | None:
    gpus = [device for device in devices if device.get("kind") == "cuda"]
    if not gpus:
        return None
    groups = Counter((gpu.get("name"), gpu.get("cc_mode"), bool(gpu.get("usable"))) for gpu in gpus)
    parts = [
        f"{count}× {name} (CC {cc_mode}{'' if usable else ', not usable'})"
        for (name, cc_mode, usable), count in groups.items()
    ]
    return "GPU " + ", ".join(parts)


def header_line(environment: Environment) -> str:
    """One line for pytest's header, e.g.

    ``tee: tdx (kvm) — tdx_guest flag, /dev/tdx_guest, tsm provider tdx_guest; CPU … 16 threads; clocksource tsc``
    """
    if environment.tee == "none":
        hosts = [item for item in environment.evidence if item.supports == "tdx-host"]
        signals = "TDX host, not a guest" if hosts else "no TEE signals"
    else:
        labels = list(dict.fromkeys(short_label(item) for item in _supporting(environment)))
        signals = ", ".join(labels[:_MAX_HEADER_SIGNALS])
        if len(labels) > _MAX_HEADER_SIGNALS:
            signals += f" +{len(labels) - _MAX_HEADER_SIGNALS} more"
    parts = [f"tee: {environment.tee} ({environment.platform}) — {signals}", _cpu_summary(environment.host)]
    gpus = _gpu_summary(environment.devices)
    if gpus:
        parts.append(gpus)
    parts.append(f"clocksource {environment.host.get('clocksource') or 'unknown'}")
    return "; ".join(parts)


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]


def _host_rows(host: dict[str, Any]) -> list[tuple[str, str]]:
    cpu = host.get("cpu") or {}
    memory = host.get("memory") or {}
    numa = host.get("numa") or {}
    cgroup = host.get("cgroup") or {}
    features = [name for name in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2") if cpu.get(name)]
    # None means /proc/cpuinfo was not read (a partial sysroot): unknown, which is not "no AMX".
    unknown = not features and any(cpu.get(name) is None for name in ("amx", "avx512f"))
    absent = "CPU features unknown (no /proc/cpuinfo)" if unknown else "no AMX/AVX-512"
    cores = f", {cpu['physical_cores']} cores" if cpu.get("physical_cores") else ""
    rows = [
        (
            "cpu",
            f"{cpu.get('brand') or 'unknown'} ({cpu.get('vendor') or '?'}), {cpu.get('logical_cpus') or '?'} "
            f"logical{cores}; {' '.join(features) or absent}",
        ),
        ("affinity", f"{cpu.get('affinity')} ({cpu.get('usable_cpus')} CPUs)" if cpu.get("affinity") else "unknown"),
        (
            "cpu quota",
            "none"
            if cgroup.get("cpu_quota") is None
            else f"{cgroup['cpu_quota']:g} CPUs (cgroup v{cgroup.get('version')}, {cgroup.get('source')})",
        ),
        ("numa", "unknown" if numa.get("nodes") is None else f"{numa['nodes']} node(s)"),
        (
            "memory",
            f"{_gib(memory.get('total_bytes'))} total, {_gib(memory.get('available_bytes'))} available"
            + (f", {_gib(memory['unaccepted_bytes'])} unaccepted" if memory.get("unaccepted_bytes") else "")
            + (f", swiotlb {memory['swiotlb_mib']} MiB" if memory.get("swiotlb_mib") else ""),
        ),
        (
            "clocksource",
            f"{host.get('clocksource') or 'unknown'} (available: "
            f"{' '.join(host.get('clocksources_available') or []) or '?'})",
        ),
        ("kernel", host.get("kernel") or "unknown"),
        ("thp", str((host.get("thp") or {}).get("enabled") or "unknown")),
    ]
    cmdline = host.get("cmdline")
    if cmdline:
        rows.append(("cmdline", " ".join(f"{key}={value}" if value else key for key, value in cmdline.items())))
    libraries = host.get("libraries") or {}
    rows.append(("libraries", ", ".join(f"{name} {version}" for name, version in libraries.items() if version)))
    return rows


def _device_rows(devices: list[dict[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for device in devices:
        if device.get("kind") == "cpu":
            rows.append(("cpu", f"{device.get('name') or 'unknown CPU'}, {device.get('logical_cpus') or '?'} logical"))
            continue
        cc = device.get("cc") or {}
        state = f"CC {device.get('cc_mode')}"
        if cc.get("environment"):
            state += f" ({cc['environment']}"
            state += ", ready)" if cc.get("ready") else (", NOT ready)" if cc.get("ready") is False else ")")
        usable = "usable" if device.get("usable") else f"NOT usable: {device.get('reason')}"
        rows.append(
            (
                device_label(device),
                f"{device.get('name')}, {device.get('memory_total_mib')} MiB, driver {device.get('driver')}, "
                f"{state}; {usable}",
            )
        )
    return rows


def render_text(environment: Environment) -> str:
    """The table ``pytest-tee env`` prints."""
    from pytest_tee.environment.detection import execution_envs, unavailable_devices

    lines = [
        f"tee          {environment.tee}   (claim {environment.claim}; detection is a label — proof is attestation)",
        f"platform     {environment.platform}",
        f"sysroot      {environment.sysroot}",
        f"fingerprint  {environment.fingerprint}",
        "",
        "Evidence",
    ]
    lines += _table(
        [
            (item.signal, item.source, f"→ {item.supports}" if item.supports else "", item.finding)
            for item in environment.evidence
        ]
    )
    lines += ["", "Host", *_table(_host_rows(environment.host))]
    lines += ["", "Devices", *_table(_device_rows(environment.devices))]
    envs = execution_envs(environment)
    lines += ["", "Execution environments", "  " + (", ".join(env.name for env in envs) or "none")]
    for device, reason in unavailable_devices(environment).items():
        lines.append(f"  no {device}: {reason}")
    if environment.warnings:
        lines += ["", "Warnings", *(f"  - {warning}" for warning in environment.warnings)]
    return "\n".join(lines)
