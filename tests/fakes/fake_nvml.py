"""A small, honest fake of the pynvml (nvidia-ml-py) functions pytest-tee calls, for hosts without a GPU.

It behaves like nvidia-ml-py 13.x where detection can tell the difference: every call before ``nvmlInit`` raises
``NVMLError_Uninitialized``; init/shutdown are reference counted; a non-CC GPU (``cc=None``) raises
``NVMLError_NotSupported`` from the confidential-computing calls; names and versions come back as ``str``; the
CC structs carry the field names of ``c_nvmlConfComputeSystemState_t`` / ``c_nvmlConfComputeSystemCaps_t``; the
ready state is ``NVML_CC_ACCEPTING_CLIENT_REQUESTS_TRUE`` (1) or ``_FALSE`` (0). ``calls`` records what was
called, so tests can check that detection shut NVML down again.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
}


# Class names are pynvml's own (NVMLError_<Code>), so detection code written against pynvml catches them.
class NVMLError(Exception):
    value = 999

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_Uninitialized(NVMLError):
    value = NVML_ERROR_UNINITIALIZED


class NVMLError_InvalidArgument(NVMLError):
    value = NVML_ERROR_INVALID_ARGUMENT


class NVMLError_NotSupported(NVMLError):
    value = NVML_ERROR_NOT_SUPPORTED


class NVMLError_DriverNotLoaded(NVMLError):
    value = NVML_ERROR_DRIVER_NOT_LOADED


class NVMLError_LibraryNotFound(NVMLError):
    value = NVML_ERROR_LIBRARY_NOT_FOUND


_ERRORS = {
    cls.value: cls
    for cls in (
        NVMLError_Uninitialized,
        NVMLError_InvalidArgument,
        NVMLError_NotSupported,
        NVMLError_DriverNotLoaded,
        NVMLError_LibraryNotFound,
    )
}


@dataclass(frozen=True)
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total_bytes: int = 81559 * 2**20
    uuid: str = "GPU-5b1c8f0e-2d3a-4c4b-9e6f-7a8b9c0d1e2f"
    compute_capability: tuple[int, int] = (9, 0)


@dataclass(frozen=True)
class FakeCc:
    """System CC state: NVML_CC_SYSTEM_FEATURE_*, _DEVTOOLS_MODE_*, _ENVIRONMENT_*, ready state, CPU/GPU caps."""

    feature: int = 1  # ENABLED
    devtools: int = 0  # OFF
    environment: int = 2  # PROD
    ready: int = 1  # NVML_CC_ACCEPTING_CLIENT_REQUESTS_TRUE
    cpu_caps: int = 2  # NVML_CC_SYSTEM_CPU_CAPS_INTEL_TDX
    gpus_caps: int = 1  # CAPABLE


@dataclass(frozen=True)
class _Handle:
    index: int


@dataclass
class _State:
    gpus: tuple[FakeGpu, ...]
    driver: str
    cc: FakeCc | None
    init_error: int | None
    refcount: int = 0
    calls: list[str] = field(default_factory=list)


def make_fake_nvml(
    gpus: tuple[FakeGpu, ...] = (FakeGpu(),),
    *,
    driver: str = "550.90.07",
    cc: FakeCc | None = None,
    init_error: int | None = None,
) -> types.ModuleType:
    """A module object with pynvml's names. ``cc=None``: GPUs without confidential computing (NotSupported)."""
    state = _State(gpus=tuple(gpus), driver=driver, cc=cc, init_error=init_error)
    module = types.ModuleType("fake_pynvml")

    def record(name: str) -> None:
        state.calls.append(name)
        if state.refcount <= 0:
            raise NVMLError_Uninitialized()

    def nvmlInit() -> None:
        state.calls.append("nvmlInit")
        if state.init_error is not None:
            raise _ERRORS.get(state.init_error, NVMLError)()
        state.refcount += 1

    def nvmlShutdown() -> None:
        record("nvmlShutdown")
        state.refcount -= 1

    def nvmlSystemGetDriverVersion() -> str:
        record("nvmlSystemGetDriverVersion")
        return state.driver

    def nvmlDeviceGetCount() -> int:
        record("nvmlDeviceGetCount")
        return len(state.gpus)

    def gpu_of(handle: _Handle) -> FakeGpu:
        return state.gpus[handle.index]

    def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
        record("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(state.gpus):
            raise NVMLError_InvalidArgument()
        return _Handle(index)

    def nvmlDeviceGetName(handle: _Handle) -> str:
        record("nvmlDeviceGetName")
        return gpu_of(handle).name

    def nvmlDeviceGetMemoryInfo(handle: _Handle) -> Any:
        record("nvmlDeviceGetMemoryInfo")
        total = gpu_of(handle).memory_total_bytes
        return types.SimpleNamespace(total=total, free=total - 2**29, used=2**29)

    def nvmlDeviceGetUUID(handle: _Handle) -> str:
        record("nvmlDeviceGetUUID")
        return gpu_of(handle).uuid

    def nvmlDeviceGetCudaComputeCapability(handle: _Handle) -> tuple[int, int]:
        record("nvmlDeviceGetCudaComputeCapability")
        return gpu_of(handle).compute_capability

    def cc_state(name: str) -> FakeCc:
        record(name)
        if state.cc is None:
            raise NVMLError_NotSupported()
        return state.cc

    def nvmlSystemGetConfComputeState() -> Any:
        cc = cc_state("nvmlSystemGetConfComputeState")
        return types.SimpleNamespace(environment=cc.environment, ccFeature=cc.feature, devToolsMode=cc.devtools)

    def nvmlSystemGetConfComputeGpusReadyState() -> int:
        return cc_state("nvmlSystemGetConfComputeGpusReadyState").ready

    def nvmlSystemGetConfComputeCapabilities() -> Any:
        cc = cc_state("nvmlSystemGetConfComputeCapabilities")
        return types.SimpleNamespace(cpuCaps=cc.cpu_caps, gpusCaps=cc.gpus_caps)

    for name, value in list(locals().items()):
        if name.startswith("nvml"):
            setattr(module, name, value)
    module.NVMLError = NVMLError
    for cls in _ERRORS.values():
        setattr(module, cls.__name__, cls)
    module.NVML_CC_ACCEPTING_CLIENT_REQUESTS_FALSE = 0
    module.NVML_CC_ACCEPTING_CLIENT_REQUESTS_TRUE = 1
    module.calls = state.calls
    module.state = state
    return module
