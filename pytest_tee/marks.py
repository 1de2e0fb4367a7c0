"""The ``tee_env`` and ``tee_requires`` markers: which tests run where, and why the others are skipped.

Both names carry the ``tee_`` prefix so that a project's own markers (a ``requires`` of its own, say) are never
taken or interpreted by pytest-tee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: this module is loaded by every pytest session
    from pytest_tee.environment.record import Environment, ExecutionEnv

KNOWN_ENVS = ("cpu", "cuda", "tdx", "tdx-cuda", "sev-snp", "sev-snp-cuda")
REQUIRES_KEYS = ("cuda", "tee", "min_memory_gb", "cpu_flags")

MARKER_NAMES = ("tee_env", "tee_requires")
MARKERS = (
    "tee_env(*names): run this test only in these execution environments "
    f"({', '.join(KNOWN_ENVS)}); other instances are not generated.",
    "tee_requires(cuda=False, tee=None, min_memory_gb=None, cpu_flags=()): capability gate; a test whose needs "
    "are not met is skipped with a reason naming what is missing.",
)


class MarkerError(ValueError):
    """A marker used with arguments it does not take."""


def base_name(env_name: str) -> str:
    """``cuda:1`` → ``cuda``: markers name kinds of environment, not device indices."""
    return env_name.split(":", 1)[0]


def validate_tee_env(names: Sequence[Any]) -> tuple[str, ...]:
    if not names:
        raise MarkerError(f"@pytest.mark.tee_env needs at least one environment name: {', '.join(KNOWN_ENVS)}")
    bad = [name for name in names if name not in KNOWN_ENVS]
    if bad:
        raise MarkerError(
            f"@pytest.mark.tee_env: unknown environment {', '.join(map(repr, bad))}; known: {', '.join(KNOWN_ENVS)}"
        )
    return tuple(names)


def select_envs(envs: Iterable[ExecutionEnv], wanted: Sequence[str] | None) -> list[ExecutionEnv]:
    envs = list(envs)
    if wanted is None:
        return envs
    return [env for env in envs if base_name(env.name) in wanted]


def unmet_requirements(
    requirements: Mapping[str, Any], environment: Environment, execution_env: ExecutionEnv | None
) -> list[str]:
    """What this test needs and this instance lacks, one phrase each (empty when everything is met)."""
    unknown = sorted(set(requirements) - set(REQUIRES_KEYS))
    if unknown:
        raise MarkerError(
            f"@pytest.mark.tee_requires: unknown argument {', '.join(unknown)}; valid: {', '.join(REQUIRES_KEYS)}"
        )
    missing: list[str] = []
    if requirements.get("cuda"):
        missing.extend(_missing_cuda(environment, execution_env))
    tee = requirements.get("tee")
    if tee is not None:
        actual = execution_env.tee if execution_env is not None else environment.tee
        if actual != tee:
            missing.append(f"TEE {tee} (this runs in: {actual})")
    min_gb = requirements.get("min_memory_gb")
    if min_gb is not None:
        total = _memory_gib(environment, execution_env)
        if total is None or total < float(min_gb):
            have = "unknown" if total is None else f"{total:.1f} GiB"
            missing.append(f"{float(min_gb):g} GiB of memory (have {have})")
    flags = requirements.get("cpu_flags") or ()
    if isinstance(flags, str):
        flags = (flags,)
    have_flags = set(environment.facts.cpu_flags)
    absent = [flag for flag in flags if flag not in have_flags]
    if absent:
        missing.append(f"CPU flags {', '.join(absent)}")
    return missing


def _missing_cuda(environment: Environment, execution_env: ExecutionEnv | None) -> list[str]:
    if execution_env is not None:
        return [] if execution_env.device == "cuda" else [f"CUDA (this instance runs on {execution_env.name})"]
    usable = [d for d in environment.devices if d.get("kind") == "cuda" and d.get("usable")]
    if usable:
        return []
    reasons = [f"{d.get('name', 'GPU')}: {d.get('reason')}" for d in environment.devices if d.get("kind") == "cuda"]
    return ["a usable CUDA device" + (f" ({'; '.join(reasons)})" if reasons else " (none found)")]


def _memory_gib(environment: Environment, execution_env: ExecutionEnv | None) -> float | None:
    if execution_env is not None and execution_env.device == "cuda":
        for device in environment.devices:
            if device.get("kind") == "cuda" and device.get("index", 0) == (execution_env.device_index or 0):
                mib = device.get("memory_total_mib")
                return mib / 1024 if isinstance(mib, (int, float)) else None
        return None
    total = environment.facts.memory_total_bytes
    return total / 2**30 if total is not None else None
