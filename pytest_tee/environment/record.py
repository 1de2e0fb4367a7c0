"""The records detection produces: evidence, the environment, and the execution environments it offers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_tee.records import HostFacts

TEE_KINDS = ("none", "tdx", "sev-snp")


@dataclass(frozen=True)
class Evidence:
    """One signal that was checked: what it is, where it was read, what was found, and what it points to."""

    signal: str  # e.g. "cpuinfo flag tdx_guest"
    source: str  # e.g. "/proc/cpuinfo" (path as seen by the probed system, not the sysroot path)
    finding: str  # e.g. "present", "absent", "unreadable (permission denied)", "provider tdx_guest"
    supports: str | None = None  # "tdx", "sev-snp", "tdx-host", "azure-tdx", ... or None when it points nowhere

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExecutionEnv:
    """One place a benchmark can run: a device inside (or outside) a trust boundary.

    ``name`` is what tests are parametrized by and what results are labelled with:
    ``cpu``, ``cuda``, ``tdx`` (CPU inside a TD), ``tdx-cuda``, ``sev-snp``, ``sev-snp-cuda``.
    """

    name: str
    device: str  # "cpu" or "cuda" (a torch device type)
    tee: str  # "none", "tdx", "sev-snp"
    device_index: int | None = None
    note: str = ""

    @property
    def torch_device(self) -> str:
        return self.device if self.device_index is None else f"{self.device}:{self.device_index}"


@dataclass
class Environment:
    """Everything detection found about this machine (``pytest-tee env --json`` prints exactly this record)."""

    tee: str  # "none" | "tdx" | "sev-snp": the trust boundary the evidence supports
    platform: str  # "kvm", "azure-paravisor", "bare-metal", "unknown", ...
    evidence: list[Evidence]
    host: dict[str, Any]
    devices: list[dict[str, Any]]
    claim: str = "auto"  # what --tee claimed
    sysroot: str = "/"
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""  # filled by __post_init__ from fingerprint_fields()

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint_of(self.fingerprint_fields())

    @property
    def facts(self) -> HostFacts:
        """Typed read access to ``host`` (unknown facts are None)."""
        return HostFacts(self.host)

    def fingerprint_fields(self) -> dict[str, Any]:
        """What must match for two runs to be comparable (hashed into ``fingerprint``)."""
        facts = self.facts
        gpus = [
            {key: device.get(key) for key in ("name", "memory_total_mib", "driver", "cc_mode")}
            for device in self.devices
            if device.get("kind") == "cuda"
        ]
        return {
            "tee": self.tee,
            "platform": self.platform,
            "cpu_model": facts.cpu_brand,
            "logical_cpus": facts.logical_cpus,
            "cpu_quota": facts.cpu_quota,
            "numa_nodes": facts.numa_nodes,
            "amx": facts.cpu_feature("amx"),
            "avx512_bf16": facts.cpu_feature("avx512_bf16"),
            "memory_total_gib": _round_gib(facts.memory_total_bytes),
            "gpus": gpus,
            "libraries": {name: facts.library(name) for name in ("torch", "transformers")},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "tee": self.tee,
            "platform": self.platform,
            "claim": self.claim,
            "evidence": [item.to_dict() for item in self.evidence],
            "host": self.host,
            "devices": self.devices,
            "warnings": list(self.warnings),
            "sysroot": self.sysroot,
            "fingerprint": self.fingerprint,
            "fingerprint_fields": self.fingerprint_fields(),
        }

    def identity(self) -> dict[str, Any]:
        """What identifies this environment for comparison: the fingerprint and the facts behind it.

        This is what goes into pytest-benchmark's ``machine_info``, which pytest-benchmark compares verbatim and
        warns about on any difference; so only facts that stay put between runs on one machine belong here, never
        observations such as available memory or kernel-log line counts (those are in ``to_dict()``).
        """
        return {
            "tee": self.tee,
            "platform": self.platform,
            "fingerprint": self.fingerprint,
            "fingerprint_fields": self.fingerprint_fields(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        return cls(
            tee=data["tee"],
            platform=data.get("platform", "unknown"),
            evidence=[Evidence(**item) for item in data.get("evidence", [])],
            host=data.get("host", {}),
            devices=data.get("devices", []),
            claim=data.get("claim", "auto"),
            sysroot=data.get("sysroot", "/"),
            warnings=list(data.get("warnings", [])),
            fingerprint=data.get("fingerprint", ""),
        )


def _round_gib(value: Any) -> float | None:
    # Rounded so that a few MiB of firmware reservation between boots does not split baselines.
    if not isinstance(value, (int, float)) or value <= 0:
        return None
    return round(value / 2**30)


def fingerprint_of(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
