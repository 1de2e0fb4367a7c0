"""Environment detection: what this machine is, read through a sysroot, every signal recorded as evidence."""

from __future__ import annotations

import os
from types import ModuleType

from pytest_tee.environment.record import Environment, Evidence, ExecutionEnv, fingerprint_of

__all__ = ["Environment", "Evidence", "ExecutionEnv", "detect", "execution_envs", "fingerprint_of"]


def detect(
    sysroot: str | os.PathLike[str] = "/", *, claim: str = "auto", nvml: ModuleType | None = None
) -> Environment:
    """Detect the environment of the machine whose /proc, /sys and /dev are under ``sysroot``; never raises."""
    from pytest_tee.environment.detection import detect as _detect

    return _detect(sysroot, claim=claim, nvml=nvml)


def execution_envs(environment: Environment, devices: tuple[str, ...] = ()) -> list[ExecutionEnv]:
    from pytest_tee.environment.detection import execution_envs as _execution_envs

    return _execution_envs(environment, devices)
