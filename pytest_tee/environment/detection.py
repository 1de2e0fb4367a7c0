"""Environment detection: run every probe through a sysroot, record each signal, label the trust boundary.

Detection is a labelling step, not proof: every local signal can be faked by a malicious host or a modified
guest kernel, and only a verified quote binds results to hardware (``--tee-attest``). The label decides how
results are named and compared, so the rule is explicit and reproducible from the stored evidence alone
(:func:`decide_tee`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from pytest_tee.environment import cuda, kernel_log, platform, sev, tdx, tsm
from pytest_tee.environment.env_output import header_line, render_text
from pytest_tee.environment.host import CpuInfo, collect_host, read_cpuinfo
from pytest_tee.environment.kernel_log import KernelLog, read_kernel_log
from pytest_tee.environment.platform import PlatformFacts, decide_platform
from pytest_tee.environment.record import TEE_KINDS, Environment, Evidence, ExecutionEnv
from pytest_tee.environment.sysroot import Sysroot

__all__ = [
    "check_claim",
    "decide_tee",
    "detect",
    "execution_envs",
    "header_line",
    "render_text",
    "unavailable_devices",
]

T = TypeVar("T")

# Found signals that point to a TEE but do not suffice on their own: the CCEL ACPI table is firmware-provided
# and the NVML CPU capability is the GPU driver's view; both corroborate.
CORROBORATING = frozenset({tdx.SIGNAL_CCEL, cuda.SIGNAL_CC_CPU})
DEVICE_KINDS = ("cpu", "cuda")
_UNSUPPORTED_KINDS = (("sev-es", "SEV-ES"), ("sev", "SEV"), ("cca", "Arm CCA"))

# The signals check_claim lists for each claim (in evidence order), beside whatever points to the claim.
_CLAIM_SIGNALS = {
    "tdx": frozenset(tdx.SIGNALS) | {tsm.SIGNAL_TSM, platform.SIGNAL_HYPERV_CPUID, platform.SIGNAL_HYPERVISOR_FLAG},
    "sev-snp": frozenset(sev.SIGNALS) | {tsm.SIGNAL_TSM, platform.SIGNAL_HYPERV_CPUID, platform.SIGNAL_HYPERVISOR_FLAG},
}


def decide_tee(evidence: list[Evidence]) -> tuple[str, list[str]]:
    """The TEE label and the warnings the decision raises.

    Rule: a TEE kind (``tdx`` or ``sev-snp``) is the label when at least one *found* signal points to it and is
    not merely corroborating. Each such signal suffices on its own because it only appears when the guest kernel,
    the TDX module / AMD PSP or the paravisor treats this system as that kind of guest:

    - TDX: ``tdx_guest`` cpuinfo flag (set after CPUID 0x21 matched and TDCALL worked; a kernel that wrongly
      believed it were a TD would crash at its first TDCALL), CPUID 0x21 ``IntelTDX    ``, ``/dev/tdx_guest``
      (or a pre-upstream name), configfs-tsm provider ``tdx_guest``, the v6.16 measurement registers, and the
      kernel-log lines ``tdx: Guest detected``, ``Memory Encryption Features active: Intel TDX``, systemd's
      ``Detected confidential virtualization tdx``, Hyper-V isolation type 3 (Azure: paravisor, no 0x21).
    - SEV-SNP: ``/dev/sev-guest``, the ``sev-guest`` platform device, provider ``sev_guest``, SEV_STATUS bit 2,
      the ``vmpl`` sysfs file, and the log lines ``…active: AMD SEV SEV-ES SEV-SNP``, ``SEV: Status: … SEV-SNP``,
      ``SNP guest platform device initialized``, systemd ``sev-snp``, Hyper-V isolation type 2.

    Never sufficient: the cpuinfo ``sev``/``sev_snp`` capability bits (hosts show them), the CCEL table and the
    NVML CPU capability (corroboration), and TDX-*host* signals (``tdx_host_platform``, ``kvm_intel.tdx=Y``,
    ``virt/tdx: module initialized``), which label a machine that offers TDX to guests and is none itself. When
    both kinds have sufficient signals, the one with more wins; a tie labels ``none`` and warns.
    """
    counts = {kind: 0 for kind in TEE_KINDS if kind != "none"}
    seen: set[str] = set()
    for item in evidence:
        if item.supports is None:
            continue
        seen.add(item.supports)
        if item.supports in counts and item.signal not in CORROBORATING:
            counts[item.supports] += 1
    warnings: list[str] = []
    ranked = sorted(counts.items(), key=lambda pair: -pair[1])
    tee = ranked[0][0] if ranked[0][1] else "none"
    if len(ranked) > 1 and ranked[1][1]:
        if ranked[0][1] == ranked[1][1]:
            tee = "none"
        warnings.append(
            "conflicting TEE evidence ("
            + ", ".join(f"{kind}: {count} signals" for kind, count in ranked if count)
            + f"); labelled {tee}"
        )
    if tee == "none" and "tdx-host" in seen:
        warnings.append(
            "this is a TDX host (it offers TDX to guests), not a TD: benchmarks here measure the host; "
            "run them inside a trust domain to measure TDX"
        )
    if tee == "none" and "sev-snp-host" in seen:
        warnings.append("this is an SEV-SNP host, not an SNP guest: benchmarks here measure the host")
    unsupported = next((label for kind, label in _UNSUPPORTED_KINDS if kind in seen), None)
    if tee == "none" and unsupported:
        warnings.append(f"{unsupported} guest signals found: pytest-tee labels only tdx and sev-snp, so this is none")
    return tee, warnings


def _guarded(name: str, probe: Callable[[], T], fallback: T, evidence: list[Evidence], warnings: list[str]) -> T:
    # One broken probe (an odd file, a driver bug) must cost its own facts, never the pytest session.
    try:
        return probe()
    except Exception as exc:
        evidence.append(Evidence(f"{name} probe", "pytest-tee", f"failed: {type(exc).__name__}: {exc}"))
        warnings.append(f"the {name} probe failed ({type(exc).__name__}: {exc}); its facts are missing")
        return fallback


def _cpu_device(host: dict[str, Any]) -> dict[str, Any]:
    cpu = host.get("cpu", {})
    return {
        "kind": "cpu",
        "index": None,
        "name": cpu.get("brand"),
        "logical_cpus": cpu.get("logical_cpus"),
        "usable_cpus": cpu.get("usable_cpus"),
        "amx": cpu.get("amx"),
        "avx512_bf16": cpu.get("avx512_bf16"),
        "usable": True,
        "reason": "",
    }


def _environment_warnings(
    tee: str,
    platform_name: str,
    claim: str,
    host: dict[str, Any],
    devices: list[dict[str, Any]],
    log: KernelLog,
    interfaces: dict[str, Any],
    devices_observed: bool,
) -> list[str]:
    warnings: list[str] = []
    if claim == "none" and tee != "none":
        warnings.append(
            f"--tee=none on a host whose evidence says {tee}: results will be labelled by the evidence ({tee}), "
            "not by the claim"
        )
    # A partial sysroot without /dev cannot say a device is missing, so it gets no attestation warning.
    attestable = not devices_observed or interfaces.get("tsm_provider") is not None
    if tee == "tdx" and not attestable and not interfaces.get("tdx_guest_device"):
        if platform_name == "azure-paravisor":
            warnings.append(
                "no /dev/tdx_guest or configfs-tsm provider (expected on Azure): attestation goes through the "
                "vTPM's HCL report, which --tee-attest does not collect"
            )
        else:
            warnings.append(
                "TDX guest without /dev/tdx_guest or a configfs-tsm provider: --tee-attest cannot collect evidence; "
                "load the tdx_guest module (Ubuntu: linux-modules-extra-$(uname -r))"
            )
    if tee == "sev-snp" and not attestable and not interfaces.get("sev_guest_device"):
        warnings.append("SEV-SNP guest without /dev/sev-guest or a configfs-tsm provider: --tee-attest cannot run")
    attributes = log.group("tdx_attributes") or ""
    if "DEBUG" in attributes.split():
        warnings.append(
            "the TD runs with the DEBUG attribute: the host can read its memory; results are not confidential"
        )
    clocksource = host.get("clocksource")
    if clocksource in ("hpet", "acpi_pm", "jiffies", "refined-jiffies"):
        warnings.append(f"clocksource is {clocksource}: every clock read is slow or coarse; timings are unreliable")
    elif tee != "none" and clocksource and clocksource != "tsc":
        warnings.append(f"clocksource is {clocksource}, not tsc, inside a {tee} guest: time comes from the host")
    unaccepted = (host.get("memory") or {}).get("unaccepted_bytes")
    if unaccepted:
        warnings.append(
            f"{unaccepted / 2**30:.1f} GiB of memory not yet accepted: first touches pay acceptance, so warm up "
            "(or boot with accept_memory=eager)"
        )
    for device in devices:
        if device.get("kind") != "cuda":
            continue
        label = f"{cuda.device_label(device)} {device.get('name')}"
        if not device.get("usable"):
            warnings.append(f"{label} is not usable: {device.get('reason')}")
        elif device.get("cc_mode") == "devtools":
            warnings.append(f"{label} runs confidential computing in devtools mode: not a production posture")
        elif tee != "none" and device.get("cc_mode") in ("off", "unsupported"):
            mode = device.get("cc_mode")
            warnings.append(f"{label} has confidential computing {mode}: it is outside the {tee} boundary")
    return warnings


def detect(
    sysroot: str | os.PathLike[str] = "/", *, claim: str = "auto", nvml: ModuleType | None = None
) -> Environment:
    """Detect the environment under ``sysroot`` (``/`` = this machine). Never raises.

    ``claim`` is the ``--tee`` value (recorded; ``none`` on a TEE host adds a warning). ``nvml`` injects a
    pynvml-compatible module (tests, or a caller that already imported it); otherwise pynvml is imported only on a
    live system with NVIDIA driver signals.
    """
    root = Sysroot(sysroot)
    evidence: list[Evidence] = []
    warnings: list[str] = []
    if not root.root.is_dir():
        warnings.append(f"sysroot {os.fspath(sysroot)} is not a directory: every fact is unknown")

    unknown_cpu = CpuInfo(known=False, reason="probe failed")
    cpu = _guarded("cpuinfo", lambda: read_cpuinfo(root), unknown_cpu, evidence, warnings)
    log = _guarded(
        "kernel log",
        lambda: read_kernel_log(root),
        KernelLog(source="dmesg", lines=None, reason="probe failed"),
        evidence,
        warnings,
    )
    no_items: list[Evidence] = []
    no_facts: dict[str, Any] = {}
    no_gpus: list[dict[str, Any]] = []
    no_provider: tuple[Evidence | None, str | None] = (None, None)
    tdx_items, tdx_interfaces = _guarded("tdx", lambda: tdx.probe(root, cpu), (no_items, no_facts), evidence, warnings)
    tsm_item, provider = _guarded("configfs-tsm", lambda: tsm.probe(root), no_provider, evidence, warnings)
    sev_items, sev_interfaces = _guarded("sev", lambda: sev.probe(root, cpu), (no_items, no_facts), evidence, warnings)
    log_items = _guarded("kernel log evidence", lambda: kernel_log.evidence(log), no_items, evidence, warnings)
    platform_items, platform_facts = _guarded(
        "platform", lambda: platform.probe(root, cpu, log), (no_items, PlatformFacts()), evidence, warnings
    )
    cuda_items, gpus = _guarded("cuda", lambda: cuda.probe(root, nvml), (no_items, no_gpus), evidence, warnings)
    host = _guarded("host", lambda: collect_host(root, cpu), dict(no_facts), evidence, warnings)

    evidence[:0] = [*tdx_items, *([tsm_item] if tsm_item else []), *sev_items, *log_items, *platform_items, *cuda_items]
    interfaces = {**tdx_interfaces, "tsm_provider": provider, **sev_interfaces}
    interfaces["tpm_device"] = next((p for p in ("/dev/tpmrm0", "/dev/tpm0") if root.exists(p)), None)
    if host:
        host.setdefault("memory", {})["swiotlb_mib"] = log.swiotlb_mib
        host["tee_interfaces"] = interfaces

    tee, tee_warnings = decide_tee(evidence)
    platform_name = _guarded(
        "platform decision", lambda: decide_platform(platform_facts), "unknown", evidence, warnings
    )
    devices = [_cpu_device(host), *gpus]
    warnings += tee_warnings
    warnings += _guarded(
        "warnings",
        lambda: _environment_warnings(tee, platform_name, claim, host, devices, log, interfaces, root.captured("/dev")),
        [],
        evidence,
        warnings,
    )
    return Environment(
        tee=tee,
        platform=platform_name,
        evidence=evidence,
        host=host,
        devices=devices,
        claim=claim,
        sysroot=os.fspath(sysroot),
        warnings=warnings,
    )


def _cuda_devices(environment: Environment) -> list[dict[str, Any]]:
    return [device for device in environment.devices if device.get("kind") == "cuda"]


def execution_envs(environment: Environment, devices: tuple[str, ...] = ()) -> list[ExecutionEnv]:
    """The execution environments this host can run, filtered by ``--tee-device`` (``()`` = all).

    The CPU is ``cpu`` outside a TEE and ``tdx`` / ``sev-snp`` inside one; each usable CUDA device is ``cuda``,
    ``tdx-cuda`` or ``sev-snp-cuda``, suffixed with its torch index (``cuda:1``) when the host has several GPUs.
    """
    wanted = set(devices) or set(DEVICE_KINDS)
    tee = environment.tee
    envs: list[ExecutionEnv] = []
    if "cpu" in wanted:
        note = "CPU" if tee == "none" else f"CPU inside a {tee} guest"
        envs.append(ExecutionEnv(name="cpu" if tee == "none" else tee, device="cpu", tee=tee, note=note))
    if "cuda" in wanted:
        gpus = _cuda_devices(environment)
        base = "cuda" if tee == "none" else f"{tee}-cuda"
        for gpu in gpus:
            if not gpu.get("usable"):
                continue
            index = gpu.get("index")
            name = f"{base}:{index}" if len(gpus) > 1 else base
            note = f"{gpu.get('name')}, CC {gpu.get('cc_mode')}"
            envs.append(ExecutionEnv(name=name, device="cuda", tee=tee, device_index=index, note=note))
    return envs


def _cuda_absent_reason(environment: Environment) -> str:
    gpus = _cuda_devices(environment)
    if gpus:
        return "; ".join(f"{cuda.device_label(gpu)} {gpu.get('name')}: {gpu.get('reason')}" for gpu in gpus)
    checked = [item for item in environment.evidence if item.signal in cuda.SIGNALS]
    details = "; ".join(f"{item.signal} ({item.source}): {item.finding}" for item in checked)
    driver_present = any(item.supports == "cuda" for item in checked)
    if environment.sysroot not in ("", "/") and driver_present:
        # The tree shows an NVIDIA driver, but GPUs are enumerated by NVML and torch, which see this machine only.
        return "GPUs are not enumerated under a sysroot (NVML and torch would describe this machine) — " + details
    return "no NVIDIA GPU enumerated" + (f" — {details}" if details else "")


def unavailable_devices(environment: Environment, devices: tuple[str, ...] = ()) -> dict[str, str]:
    """Device kind → why no execution environment offers it, for each requested kind (``()`` = cpu and cuda)."""
    wanted = devices or DEVICE_KINDS
    offered = {env.device for env in execution_envs(environment, tuple(d for d in wanted if d in DEVICE_KINDS))}
    reasons: dict[str, str] = {}
    for device in wanted:
        if device in offered:
            continue
        if device == "cuda":
            reasons[device] = _cuda_absent_reason(environment)
        elif device not in DEVICE_KINDS:
            reasons[device] = f"unknown device {device!r}; devices are {', '.join(DEVICE_KINDS)}"
    return reasons


def check_claim(environment: Environment, claim: str) -> str | None:
    """The usage-error text when ``--tee=claim`` is not supported by the evidence; None when it is.

    ``auto`` and ``none`` always pass (``none`` on a TEE host is recorded as a warning by :func:`detect`).
    """
    if claim in ("auto", "none") or claim == environment.tee:
        return None
    if claim not in _CLAIM_SIGNALS:
        return f"--tee={claim} is not a trust boundary pytest-tee knows; use auto, none, tdx or sev-snp"
    relevant = _CLAIM_SIGNALS[claim] | set(kernel_log.TEE_SIGNALS)
    checked = [item for item in environment.evidence if item.signal in relevant or item.supports == claim]
    lines = [
        f"--tee={claim} is not supported by the evidence on this host (detected tee: {environment.tee}, "
        f"platform: {environment.platform}). Signals checked:"
    ]
    lines += [f"  {item.signal} [{item.source}]: {item.finding}" for item in checked]
    if any(item.supports == "tdx-host" for item in environment.evidence) and claim == "tdx":
        lines.append("This machine is a TDX host, not a trust domain: run the benchmarks inside a TD.")
    lines.append("Run `pytest-tee env` for every fact, or use --tee=auto to label results by the evidence.")
    return "\n".join(lines)
