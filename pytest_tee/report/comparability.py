"""What else differs between the two sides of a ratio, besides what the ratio is about.

A TDX/CPU ratio is meant to show the cost of the trust domain. If the TD also had fewer vCPUs, one NUMA node
instead of two, or another torch build, that difference — not TDX — may be what the ratio shows (the paper's
"TDX faster than CPU for 1.5B" is the example). These facts come from each run's environment record
(``machine_info["tee"]``: the fingerprint fields and the host facts) and from each measurement's
``extra_info["tee"]`` (threads, dtype, weights, versions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_tee.report.data import Source

# fact name → how it is shown; the order is the order notes list them in.
FACT_LABELS: dict[str, str] = {
    "threads": "torch threads",
    "interop_threads": "torch inter-op threads",
    "logical_cpus": "logical CPUs",
    "cpu_quota": "cgroup CPU quota",
    "cpu_model": "CPU model",
    "numa_nodes": "NUMA nodes",
    "amx": "AMX",
    "avx512_bf16": "AVX512-BF16",
    "memory_total_gib": "memory GiB",
    "dtype": "dtype",
    "weights": "weights",
    "placement": "placement",
    "torch": "torch",
    "transformers": "transformers",
    "clocksource": "clocksource",
    "kernel": "kernel",
    "platform": "platform",
    "gpus": "GPUs",
}
CPU_SIDE_FACTS = ("threads", "interop_threads")


@dataclass(frozen=True)
class Difference:
    fact: str
    numerator: Any
    denominator: Any

    @property
    def label(self) -> str:
        return FACT_LABELS.get(self.fact, self.fact)

    def describe(self, numerator_env: str, denominator_env: str) -> str:
        return f"{self.label} ({numerator_env} {_show(self.numerator)}, {denominator_env} {_show(self.denominator)})"

    def to_dict(self) -> dict[str, Any]:
        return {"fact": self.fact, "label": self.label, "numerator": self.numerator, "denominator": self.denominator}


def _show(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else "none"
    return str(value)


def facts(source: Source) -> dict[str, Any]:
    """The facts of one measurement that can change its speed, from its run and its own record."""
    environment = source.saved.run.environment
    measurement = source.entry.measurement
    stored_fields = environment.get("fingerprint_fields")
    fields = stored_fields if isinstance(stored_fields, Mapping) else _fingerprint_fields(environment)
    host = _mapping(environment.get("host"))
    libraries = _mapping(fields.get("libraries"))
    versions = measurement.versions
    return {
        "threads": measurement.threads,
        "interop_threads": measurement.interop_threads,
        "logical_cpus": fields.get("logical_cpus"),
        "cpu_quota": fields.get("cpu_quota"),
        "cpu_model": fields.get("cpu_model"),
        "numa_nodes": fields.get("numa_nodes"),
        "amx": fields.get("amx"),
        "avx512_bf16": fields.get("avx512_bf16"),
        "memory_total_gib": fields.get("memory_total_gib"),
        "dtype": measurement.dtype,
        "weights": measurement.weights,
        "placement": measurement.placement.get("strategy"),
        "torch": versions.get("torch", libraries.get("torch")),
        "transformers": versions.get("transformers", libraries.get("transformers")),
        "clocksource": host.get("clocksource"),
        "kernel": host.get("kernel"),
        "platform": fields.get("platform", environment.get("platform")),
        "gpus": list(fields.get("gpus") or []),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fingerprint_fields(environment: Mapping[str, Any]) -> Mapping[str, Any]:
    # Older records without fingerprint_fields: recompute them the way the environment record defines them.
    from pytest_tee.environment.record import Environment

    try:
        return Environment.from_dict(dict(environment)).fingerprint_fields()
    except (KeyError, TypeError, AttributeError):
        return {}


def differences(numerator: Source, denominator: Source, *, kind: str) -> list[Difference]:
    """Facts that differ between the two sides, leaving out what the ratio compares on purpose.

    ``kind``: "tee-cpu" (a TEE's CPU against bare CPU), "tee-gpu" (a TEE's GPU against a bare GPU) or
    "gpu-cpu" (a GPU against the CPU). TEE membership is the point of every ratio, so it is never listed; GPUs
    do not change CPU results; the CPU thread count hardly changes GPU results; NVIDIA's CC mode is part of a
    GPU TEE.
    """
    left, right = facts(numerator), facts(denominator)
    skip: set[str] = set()
    if kind == "tee-cpu":
        skip.add("gpus")
    elif kind == "gpu-cpu":
        skip.update({"gpus", *CPU_SIDE_FACTS})
    elif kind == "tee-gpu":
        skip.update(CPU_SIDE_FACTS)
        left["gpus"] = _without_cc_mode(left["gpus"])
        right["gpus"] = _without_cc_mode(right["gpus"])
    found: list[Difference] = []
    for fact in FACT_LABELS:
        if fact in skip:
            continue
        if _normalised(left[fact]) != _normalised(right[fact]):
            found.append(Difference(fact, left[fact], right[fact]))
    return found


def _without_cc_mode(gpus: list[Any]) -> list[Any]:
    return [{k: v for k, v in gpu.items() if k != "cc_mode"} if isinstance(gpu, Mapping) else gpu for gpu in gpus]


def _normalised(value: Any) -> str:
    if isinstance(value, str):
        return value.strip().lower()
    return json.dumps(value, sort_keys=True, default=str)
