"""NVIDIA GPUs and their confidential-computing state (reference/tee-interfaces.md §5).

Order of questions, cheapest first:

1. NVIDIA driver signals through the sysroot: ``/proc/driver/nvidia/version`` and ``/dev/nvidiactl``.
2. NVML (``nvidia-ml-py``, imported as ``pynvml``) — an injected module always; otherwise only on a live system
   with driver signals (without the kernel driver NVML cannot see a GPU, and a sysroot describes another
   machine). Gives names, memory, driver, and the system-wide CC state: feature on/off, devtools mode,
   environment, and the GPUs-ready state. In CC mode CUDA refuses work until the ready state is set (after
   attestation), so a CC GPU that is not ready is *not* a usable CUDA environment.
3. torch — only on a live system and only when step 1 or 2 found NVIDIA signals: ``import torch`` costs about
   2 s, which every pytest session would pay otherwise. A GPU torch cannot see is not usable either.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pytest_tee.environment.record import Evidence
from pytest_tee.environment.sysroot import Sysroot

SIGNAL_DRIVER = "NVIDIA kernel driver"
SIGNAL_CTL = "NVIDIA control device"
SIGNAL_NVML = "NVML"
SIGNAL_CC = "NVML confidential computing"
SIGNAL_CC_CPU = "NVML CC CPU capability"
SIGNAL_TORCH = "torch CUDA"

SIGNALS = (SIGNAL_DRIVER, SIGNAL_CTL, SIGNAL_NVML, SIGNAL_CC, SIGNAL_CC_CPU, SIGNAL_TORCH)

DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"
CTL_DEVICE = "/dev/nvidiactl"

_ENVIRONMENTS = {0: "unavailable", 1: "simulation", 2: "production"}
_CPU_CAPS = {0: "none", 1: "AMD_SEV", 2: "INTEL_TDX", 3: "AMD_SEV_SNP", 4: "AMD_SNP_VTOM"}
_CPU_CAPS_SUPPORT = {"INTEL_TDX": "tdx", "AMD_SEV_SNP": "sev-snp", "AMD_SNP_VTOM": "sev-snp", "AMD_SEV": "sev"}
_GPU_CAPS = {0: "not capable", 1: "capable"}


@dataclass
class CcState:
    """System-wide NVIDIA confidential-computing state as NVML reports it."""

    mode: str  # "on" | "devtools" | "off" | "unsupported" | "unknown"
    detail: str
    environment: str | None = None
    ready: bool | None = None  # None when CC is off or the state could not be read
    cpu_caps: str | None = None
    gpus_caps: str | None = None

    @property
    def enabled(self) -> bool:
        return self.mode in ("on", "devtools")

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "environment": self.environment,
            "ready": self.ready,
            "cpu_caps": self.cpu_caps,
            "gpus_caps": self.gpus_caps,
            "detail": self.detail,
        }


@dataclass
class NvmlReport:
    driver: str | None
    gpus: list[dict[str, Any]]
    cc: CcState


@dataclass
class TorchReport:
    checked: bool
    finding: str
    gpus: list[dict[str, Any]] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def driver_version(sysroot: Sysroot) -> tuple[str | None, str]:
    read = sysroot.read_text(DRIVER_VERSION_FILE)
    if read.text is None:
        return None, read.reason
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", read.text)
    return (match.group(1), "ok") if match else (None, "present, version not found")


def _query_cc(nvml: ModuleType) -> CcState:
    get_state = getattr(nvml, "nvmlSystemGetConfComputeState", None)
    if get_state is None:
        return CcState("unknown", "nvidia-ml-py has no confidential-computing API (too old)")
    not_supported = getattr(nvml, "NVMLError_NotSupported", None)
    try:
        state = get_state()
    except nvml.NVMLError as exc:
        if not_supported is not None and isinstance(exc, not_supported):
            return CcState("unsupported", "not supported (a GPU or driver without confidential computing)")
        return CcState("unknown", f"nvmlSystemGetConfComputeState failed: {exc}")
    feature_on = int(state.ccFeature) != 0
    devtools = int(state.devToolsMode) != 0
    cc = CcState(
        mode=("devtools" if devtools else "on") if feature_on else "off",
        detail="",
        environment=_ENVIRONMENTS.get(int(state.environment), f"unknown ({int(state.environment)})"),
    )
    if feature_on:
        try:
            cc.ready = int(nvml.nvmlSystemGetConfComputeGpusReadyState()) == 1
        except nvml.NVMLError as exc:
            cc.detail = f"ready state unreadable: {exc}"
    try:
        caps = nvml.nvmlSystemGetConfComputeCapabilities()
        cc.cpu_caps = _CPU_CAPS.get(int(caps.cpuCaps), f"unknown ({int(caps.cpuCaps)})")
        cc.gpus_caps = _GPU_CAPS.get(int(caps.gpusCaps), f"unknown ({int(caps.gpusCaps)})")
    except (nvml.NVMLError, AttributeError):
        pass
    return cc


def _query_gpu(nvml: ModuleType, index: int) -> dict[str, Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    gpu: dict[str, Any] = {
        "nvml_index": index,
        "name": _text(nvml.nvmlDeviceGetName(handle)),
        "memory_total_mib": int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // 2**20,
        "uuid": None,
        "compute_capability": None,
    }
    with contextlib.suppress(nvml.NVMLError):
        gpu["uuid"] = _text(nvml.nvmlDeviceGetUUID(handle))
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        gpu["compute_capability"] = f"{major}.{minor}"
    except nvml.NVMLError:
        pass
    return gpu


def query_nvml(nvml: ModuleType) -> tuple[NvmlReport | None, str]:
    """Everything NVML says, or None with the reason (init failures are findings, not errors)."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return None, f"nvmlInit failed: {exc}"
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = [_query_gpu(nvml, index) for index in range(int(nvml.nvmlDeviceGetCount()))]
        return NvmlReport(driver=driver, gpus=gpus, cc=_query_cc(nvml)), "ok"
    except nvml.NVMLError as exc:
        return None, f"query failed: {exc}"
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def torch_cuda_devices() -> TorchReport:
    """What torch sees (imports torch: call only where NVIDIA signals exist)."""
    try:
        import torch
    except ImportError:
        return TorchReport(True, "torch is not installed")
    if torch.version.cuda is None:
        return TorchReport(True, "torch is a build without CUDA (torch.version.cuda is None)")
    if not torch.cuda.is_available():
        return TorchReport(True, "torch.cuda.is_available() is False")
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        uuid = getattr(props, "uuid", None)
        gpus.append(
            {
                "torch_index": index,
                "name": props.name,
                "memory_total_mib": int(props.total_memory) // 2**20,
                "uuid": str(uuid) if uuid else None,
            }
        )
    return TorchReport(True, f"{len(gpus)} device(s)", gpus)


def device_label(device: dict[str, Any]) -> str:
    """``cuda:N`` for a device torch can address, else ``NVML GPU n`` (the driver's numbering)."""
    if device.get("index") is not None:
        return f"cuda:{device['index']}"
    return f"NVML GPU {device.get('nvml_index')}"


def _uuid_key(uuid: str | None) -> str | None:
    return uuid.lower().removeprefix("gpu-") if uuid else None


def match_torch_devices(
    nvml_gpus: list[dict[str, Any]], torch_gpus: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    """The torch device of each NVML GPU (or None), by UUID; by order only when no UUID matches and counts agree.

    NVML counts every GPU in PCI order; torch sees those CUDA_VISIBLE_DEVICES lets through, in CUDA's order.
    """
    by_uuid = {_uuid_key(gpu.get("uuid")): gpu for gpu in torch_gpus if gpu.get("uuid")}
    matches = [by_uuid.get(_uuid_key(gpu.get("uuid"))) if gpu.get("uuid") else None for gpu in nvml_gpus]
    if not any(matches) and len(torch_gpus) == len(nvml_gpus):
        in_order: list[dict[str, Any] | None] = list(torch_gpus)
        return in_order
    return matches


def _usability(cc: CcState | None, torch: TorchReport, match: dict[str, Any] | None) -> tuple[bool, str]:
    if cc is not None and cc.enabled and cc.ready is False:
        return False, (
            f"confidential computing is {cc.mode} but the GPUs are not ready "
            "(nvmlSystemGetConfComputeGpusReadyState = 0): CUDA refuses work until attestation sets the ready state"
        )
    if torch.checked and match is None:
        return False, f"torch cannot use it ({torch.finding})"
    return True, ""


def build_devices(nvml_report: NvmlReport | None, torch: TorchReport, driver: str | None) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = []
    if nvml_report is not None and nvml_report.gpus:
        matches = match_torch_devices(nvml_report.gpus, torch.gpus)
        for gpu, match in zip(nvml_report.gpus, matches, strict=True):
            usable, reason = _usability(nvml_report.cc, torch, match)
            devices.append(
                {
                    "kind": "cuda",
                    # The torch index is what cuda:N means; a GPU torch cannot see has none.
                    "index": match["torch_index"] if match else (None if torch.checked else gpu["nvml_index"]),
                    **gpu,
                    "torch_index": match["torch_index"] if match else None,
                    "driver": nvml_report.driver or driver,
                    "cc_mode": nvml_report.cc.mode,
                    "cc": nvml_report.cc.to_dict(),
                    "usable": usable,
                    "reason": reason,
                }
            )
        return devices
    for gpu in torch.gpus:  # torch sees GPUs that NVML could not describe: CC state unknown
        devices.append(
            {
                "kind": "cuda",
                "index": gpu["torch_index"],
                **gpu,
                "nvml_index": None,
                "compute_capability": None,
                "driver": driver,
                "cc_mode": "unknown",
                "cc": None,
                "usable": True,
                "reason": "",
            }
        )
    return devices


def _nvml_module(sysroot: Sysroot, injected: ModuleType | None, driver_signals: bool) -> tuple[ModuleType | None, str]:
    if injected is not None:
        return injected, "ok"
    if not sysroot.live:
        return None, "not queried (a sysroot describes another machine; NVML here would describe this one)"
    if not driver_signals:
        return None, "not queried (no NVIDIA driver signals)"
    try:
        return importlib.import_module("pynvml"), "ok"
    except ImportError:
        return None, "not queried (nvidia-ml-py is not installed: pip install 'pytest-tee[cuda]')"


def _cc_evidence(cc: CcState) -> list[Evidence]:
    source = "nvmlSystemGetConfComputeState"
    if not cc.enabled:
        finding = cc.detail or f"CC {cc.mode} (environment {cc.environment})"
        return [Evidence(SIGNAL_CC, source, finding)]
    ready = {True: "GPUs ready", False: "GPUs NOT ready", None: "ready state unknown"}[cc.ready]
    items = [Evidence(SIGNAL_CC, source, f"CC {cc.mode}, environment {cc.environment}, {ready}", "nvidia-cc")]
    if cc.cpu_caps is not None:
        supports = _CPU_CAPS_SUPPORT.get(cc.cpu_caps)
        items.append(Evidence(SIGNAL_CC_CPU, "nvmlSystemGetConfComputeCapabilities", cc.cpu_caps, supports))
    return items


def probe(sysroot: Sysroot, nvml: ModuleType | None = None) -> tuple[list[Evidence], list[dict[str, Any]]]:
    """CUDA evidence and device dicts (``kind`` "cuda", ``index``, ``usable``, ``reason``, ``cc_mode`` …)."""
    driver, driver_reason = driver_version(sysroot)
    driver_present = sysroot.exists(DRIVER_VERSION_FILE)
    ctl_kind = sysroot.node_kind(CTL_DEVICE)
    ctl_finding = f"present ({ctl_kind})" if ctl_kind else sysroot.absent(CTL_DEVICE)
    items = [
        Evidence(SIGNAL_DRIVER, DRIVER_VERSION_FILE, driver or driver_reason, "cuda" if driver_present else None),
        Evidence(SIGNAL_CTL, CTL_DEVICE, ctl_finding, "cuda" if ctl_kind else None),
    ]
    driver_signals = driver_present or ctl_kind is not None

    module, reason = _nvml_module(sysroot, nvml, driver_signals)
    report: NvmlReport | None = None
    if module is not None:
        report, reason = query_nvml(module)
    if report is None:
        items.append(Evidence(SIGNAL_NVML, "nvidia-ml-py", reason))
    else:
        names = ", ".join(gpu["name"] for gpu in report.gpus) or "no GPUs"
        items.append(
            Evidence(
                SIGNAL_NVML,
                "nvidia-ml-py",
                f"{len(report.gpus)} GPU(s): {names}; driver {report.driver}",
                "cuda" if report.gpus else None,
            )
        )
        items.extend(_cc_evidence(report.cc))

    if sysroot.live and (driver_signals or (report is not None and report.gpus)):
        torch = torch_cuda_devices()
    elif sysroot.live:
        torch = TorchReport(False, "not checked (no NVIDIA signals; importing torch costs seconds)")
    else:
        torch = TorchReport(False, "not checked (a sysroot describes another machine)")
    items.append(Evidence(SIGNAL_TORCH, "torch.cuda", torch.finding, "cuda" if torch.gpus else None))
    return items, build_devices(report, torch, driver)
