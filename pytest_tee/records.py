"""The records pytest-tee writes and reads back: one typed shape per thing, one schema version, one reader.

- ``StoredMeasurement``: what ``tokens_per_second`` records for one benchmark (``extra_info["tee"]`` of a saved
  pytest-benchmark run). ``to_json`` writes it, ``from_json`` reads it back, from this schema or an older one.
- ``EngineInfo``: the inference engine that produced it (name, quantization, the settings that decide its speed);
  part of the comparison key, so runs of different engines or precisions are never compared.
- ``HostSnapshot`` and ``HostFacts``: the host facts stored with every measurement, and typed read access to the
  environment's ``host`` mapping (which hooks may edit in place, so it stays a mapping underneath).
- ``Summary``: one metric over the measured rounds.

- ``Verdict``: the gate's answer for one benchmark and metric: a frozen core, the decision model's ``ModelDetail``
  and, when inconclusive, a ``Hint`` with its unit. ``--tee-verdicts`` writes ``to_json``.

Schema history (``SCHEMA``):
  1. the original layout, no engine: read as engine ``transformers`` (the only engine schema 1 knew).
  2. adds the ``engine`` block, and ``engine``, ``quantization`` and ``engine_settings`` to the ``comparison_key``.

This module imports nothing from the rest of the package: every part may depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
LEGACY_ENGINE = "transformers"  # the engine of every schema-1 measurement
REQUIRED_KEYS = ("metrics", "samples", "execution_env", "checkpoint", "workload")


class RecordError(ValueError):
    """A stored record that this version cannot read; the message says which field and why."""


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    # Exactly as stored (no float → int coercion): these values are hashed into the environment fingerprint.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Summary:
    """A metric over the measured rounds."""

    median: float
    mean: float
    stdev: float
    p5: float
    p95: float
    ci95: tuple[float, float]  # distribution-free 95 % confidence interval of the median
    ci_level: float  # the interval's exact coverage (below 0.95 when there are fewer than 6 rounds)
    n: int
    unit: str
    higher_is_better: bool

    @property
    def ci_half_width_pct(self) -> float:
        """Half the CI width as a percentage of the median (the adaptive stopping criterion)."""
        if self.median == 0:
            return float("inf")
        return (self.ci95[1] - self.ci95[0]) / 2 / abs(self.median) * 100

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "mean": self.mean,
            "stdev": self.stdev,
            "p5": self.p5,
            "p95": self.p95,
            "ci95": list(self.ci95),
            "ci_level": self.ci_level,
            "n": self.n,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
        }

    to_dict = to_json  # the name the public ThroughputResult API has used since 0.1


# ---------------------------------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class EngineInfo:
    """The inference engine of a measurement: what decides its speed besides the model and the machine.

    ``quantization``: how the weights are stored as measured ("bfloat16", "Q4_K_M", …; schema 1: the dtype).
    ``build``: versions and compile-time features; ``settings``: run-time settings (threads, n_ctx, …);
    ``key``: the settings and build facts runs must share (written into the comparison key, not the block);
    ``weight_bytes``: bytes of weights one decode step reads (for the roofline).
    """

    name: str = LEGACY_ENGINE
    quantization: str | None = None
    build: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    key: Mapping[str, Any] = field(default_factory=dict)
    weight_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantization": self.quantization,
            "build": dict(self.build),
            "settings": dict(self.settings),
            "weight_bytes": self.weight_bytes,
        }

    def comparison_key(self) -> dict[str, Any]:
        """The comparison-key entries: engine, quantization, and the engine's own key facts."""
        return {"engine": self.name, "quantization": self.quantization, "engine_settings": dict(self.key)}

    @classmethod
    def from_json(cls, data: Any) -> EngineInfo:
        if data is None:
            return cls()
        if isinstance(data, str):  # a bare engine name
            return cls(name=data)
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise RecordError(f"engine: expected {{'name': …, 'quantization': …, 'settings': {{…}}}}, got {data!r}")
        return cls(
            name=data["name"],
            quantization=_str_or_none(data.get("quantization")),
            build=_mapping(data.get("build")),
            settings=_mapping(data.get("settings")),
            key=_mapping(data.get("key")),
            weight_bytes=_int_or_none(data.get("weight_bytes")),
        )


# ------------------------------------------------------------------------------------------ checkpoint, work


@dataclass(frozen=True)
class CheckpointInfo:
    """Which model was measured: the catalogue id (or ``custom:…``), its repository, class and exact size."""

    id: str
    repo_id: str | None = None
    architecture: str | None = None
    parameters: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # further keys a describe() gave, kept as written

    def to_json(self) -> dict[str, Any]:
        known = {
            "id": self.id,
            "repo_id": self.repo_id,
            "architecture": self.architecture,
            "parameters": self.parameters,
        }
        return {**known, **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> CheckpointInfo:
        if not isinstance(data, Mapping):
            raise RecordError(f"checkpoint: expected a mapping with an 'id', got {data!r}")
        known = ("id", "repo_id", "architecture", "parameters")
        return cls(
            id=str(data.get("id", "unknown")),
            repo_id=_str_or_none(data.get("repo_id")),
            architecture=_str_or_none(data.get("architecture")),
            parameters=_int_or_none(data.get("parameters")),
            extra={key: value for key, value in data.items() if key not in known},
        )


@dataclass(frozen=True)
class WorkloadInfo:
    """The generated work: prompt tokens, new tokens per sequence, sequences per call, and the prompt's hash."""

    prompt_tokens: int | None
    new_tokens: int | None
    batch: int | None
    prompt_sha256: str | None = None
    prompt_source: str | None = None

    @property
    def shape(self) -> tuple[int | None, int | None, int | None]:
        return (self.prompt_tokens, self.new_tokens, self.batch)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"prompt_tokens": self.prompt_tokens, "new_tokens": self.new_tokens, "batch": self.batch}
        if self.prompt_sha256 is not None:
            data["prompt_sha256"] = self.prompt_sha256
        if self.prompt_source is not None:
            data["prompt_source"] = self.prompt_source
        return data

    @classmethod
    def from_json(cls, data: Any) -> WorkloadInfo:
        if not isinstance(data, Mapping):
            raise RecordError(f"workload: expected a mapping of prompt_tokens, new_tokens, batch; got {data!r}")
        return cls(
            prompt_tokens=_int_or_none(data.get("prompt_tokens")),
            new_tokens=_int_or_none(data.get("new_tokens")),
            batch=_int_or_none(data.get("batch")),
            prompt_sha256=_str_or_none(data.get("prompt_sha256")),
            prompt_source=_str_or_none(data.get("prompt_source")),
        )


# ------------------------------------------------------------------------------------------------ host facts


@dataclass(frozen=True)
class HostSnapshot:
    """The host facts stored with every measurement, so one measurement read alone says where it was taken."""

    cpu_quota: float | None = None
    numa_nodes: int | None = None
    clocksource: str | None = None
    unaccepted_bytes: int | None = None
    logical_cpus: int | None = None
    cpu_model: str | None = None
    tee: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_quota": self.cpu_quota,
            "numa_nodes": self.numa_nodes,
            "clocksource": self.clocksource,
            "unaccepted_bytes": self.unaccepted_bytes,
            "logical_cpus": self.logical_cpus,
            "cpu_model": self.cpu_model,
            "tee": self.tee,
        }

    @classmethod
    def from_json(cls, data: Any) -> HostSnapshot:
        data = _mapping(data)
        return cls(
            cpu_quota=_float_or_none(data.get("cpu_quota")),
            numa_nodes=_int_or_none(data.get("numa_nodes")),
            clocksource=_str_or_none(data.get("clocksource")),
            unaccepted_bytes=_int_or_none(data.get("unaccepted_bytes")),
            logical_cpus=_int_or_none(data.get("logical_cpus")),
            cpu_model=_str_or_none(data.get("cpu_model")),
            tee=_str_or_none(data.get("tee")),
        )


class HostFacts:
    """Typed read access to ``Environment.host`` (the mapping detection fills and hooks may edit in place).

    A fact that could not be read is None: "unknown", never "no". ``cpu_known`` says whether /proc/cpuinfo
    was read at all, so a partial sysroot does not turn into "no AMX/AVX-512".
    """

    def __init__(self, host: Mapping[str, Any]) -> None:
        self._host = host

    def _section(self, name: str) -> Mapping[str, Any]:
        return _mapping(self._host.get(name))

    @property
    def cpu_known(self) -> bool:
        """Whether the CPU flags were read (False under a sysroot without /proc/cpuinfo)."""
        cpu = self._section("cpu")
        return cpu.get("source", "/proc/cpuinfo") == "/proc/cpuinfo" and cpu.get("amx") is not None

    @property
    def cpu_brand(self) -> str | None:
        return _str_or_none(self._section("cpu").get("brand"))

    @property
    def logical_cpus(self) -> int | None:
        return _count(self._section("cpu").get("logical_cpus"))

    @property
    def cpu_flags(self) -> tuple[str, ...]:
        flags = self._section("cpu").get("flags")
        return tuple(str(flag) for flag in flags) if isinstance(flags, Sequence) and not isinstance(flags, str) else ()

    def cpu_feature(self, name: str) -> bool | None:
        """A CPU feature (``amx``, ``avx512_bf16``, ``avx2``, …): True, False, or None when unknown."""
        value = self._section("cpu").get(name)
        return value if isinstance(value, bool) else None

    @property
    def cpu_quota(self) -> float | None:
        return _number(self._section("cgroup").get("cpu_quota"))

    @property
    def numa_nodes(self) -> int | None:
        return _count(self._section("numa").get("nodes"))

    @property
    def memory_total_bytes(self) -> int | None:
        return _count(self._section("memory").get("total_bytes"))

    @property
    def unaccepted_bytes(self) -> int | None:
        return _count(self._section("memory").get("unaccepted_bytes"))

    @property
    def clocksource(self) -> str | None:
        return _str_or_none(self._host.get("clocksource"))

    def library(self, name: str) -> str | None:
        return _str_or_none(self._section("libraries").get(name))

    def snapshot(self, tee: str) -> HostSnapshot:
        return HostSnapshot(
            cpu_quota=self.cpu_quota,
            numa_nodes=self.numa_nodes,
            clocksource=self.clocksource,
            unaccepted_bytes=self.unaccepted_bytes,
            logical_cpus=self.logical_cpus,
            cpu_model=self.cpu_brand,
            tee=tee,
        )


# ----------------------------------------------------------------------------------------------- measurement


@dataclass(frozen=True)
class StoredMeasurement:
    """One benchmark's measurement as stored in ``extra_info["tee"]`` (see docs/results-format.md).

    ``samples[metric]`` holds one value per measured round (the gate's input); ``metrics[metric]`` their summary.
    ``comparison_key``: what must be equal for two measurements to be compared (engine included).
    """

    execution_env: str
    checkpoint: CheckpointInfo
    workload: WorkloadInfo
    metrics: Mapping[str, Mapping[str, Any]]
    samples: Mapping[str, list[float]]
    engine: EngineInfo = field(default_factory=EngineInfo)
    device: str | None = None
    weights: str | None = None  # real | synthetic | custom; None when a record does not say
    weights_source: str = ""
    dtype: str | None = None
    dtype_reason: str = ""
    placement: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None
    interop_threads: int | None = None
    rounds: int = 0
    warmup: int = 0
    stop_reason: str = ""
    warmup_samples: Mapping[str, list[float]] = field(default_factory=dict)
    host: HostSnapshot = field(default_factory=HostSnapshot)
    environment_fingerprint: str = ""
    versions: Mapping[str, str | None] = field(default_factory=dict)
    comparison_key: Mapping[str, Any] = field(default_factory=dict)  # empty: built from the fields
    schema: int = SCHEMA  # the schema it was read from (written records are always ``SCHEMA``)
    serving: Mapping[str, Any] | None = None  # the openai engine: where the measured server ran (local/remote)
    load: Mapping[str, Any] | None = None  # tee_load: the load shape and each level's counts and errors
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a newer version or a hook added, kept as written

    def __post_init__(self) -> None:
        if not self.comparison_key:
            object.__setattr__(self, "comparison_key", self.build_comparison_key())

    def build_comparison_key(self) -> dict[str, Any]:
        workload = self.workload.to_json()
        return {
            "execution_env": self.execution_env,
            **self.engine.comparison_key(),
            "checkpoint": self.checkpoint.id,
            "weights": self.weights,
            "dtype": self.dtype,
            "threads": self.threads,
            "workload": {
                key: workload[key]
                for key in ("prompt_tokens", "new_tokens", "batch", "prompt_sha256")
                if key in workload
            },
        }

    def sample_values(self, metric: str) -> list[float]:
        return [float(value) for value in self.samples.get(metric, [])]

    def stored_summary(self, metric: str) -> Mapping[str, Any]:
        return _mapping(self.metrics.get(metric))

    # -- tee_load and the openai engine: read from their blocks here, not by each table ------------------------

    @property
    def load_shape(self) -> Mapping[str, Any]:
        """The load shape (concurrency or rate, requests); empty for a single-request measurement."""
        return _mapping((self.load or {}).get("shape"))

    @property
    def load_levels(self) -> list[Mapping[str, Any]]:
        """Each measured level's counts (sent, failed, …) and errors."""
        return [_mapping(level) for level in (self.load or {}).get("levels", [])]

    def requests_failed_and_sent(self) -> tuple[int, int]:
        levels = self.load_levels
        return sum(int(lv.get("failed", 0)) for lv in levels), sum(int(lv.get("sent", 0)) for lv in levels)

    @property
    def served_from(self) -> str:
        """Where the measured server ran: "local HOST", "remote HOST", or "?"."""
        serving = self.serving or {}
        return f"{serving.get('location', '?')} {serving.get('host', '')}".strip()

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "schema": SCHEMA,
            "execution_env": self.execution_env,
            "engine": self.engine.to_json(),
            "device": self.device,
            "checkpoint": self.checkpoint.to_json(),
            "weights": self.weights,
            "weights_source": self.weights_source,
            "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "placement": dict(self.placement),
            "workload": self.workload.to_json(),
            "threads": self.threads,
            "interop_threads": self.interop_threads,
            "rounds": self.rounds,
            "warmup": self.warmup,
            "stop_reason": self.stop_reason,
            "metrics": {name: dict(summary) for name, summary in self.metrics.items()},
            "samples": {name: list(values) for name, values in self.samples.items()},
            "warmup_samples": {name: list(values) for name, values in self.warmup_samples.items()},
            "host": self.host.to_json(),
            "environment_fingerprint": self.environment_fingerprint,
            "versions": dict(self.versions),
            "comparison_key": _plain(self.comparison_key),
            **({"serving": dict(self.serving)} if self.serving is not None else {}),
            **({"load": _plain(self.load)} if self.load is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> StoredMeasurement:
        """Read a stored measurement of any readable schema; RecordError says what is wrong with it."""
        if not isinstance(data, Mapping):
            raise RecordError(f"expected a mapping, got {type(data).__name__}")
        schema = data.get("schema")
        if schema not in READABLE_SCHEMAS:
            readable = ", ".join(str(number) for number in READABLE_SCHEMAS)
            raise RecordError(f"pytest-tee schema {schema!r}, this version reads schemas {readable}")
        for key in REQUIRED_KEYS:
            if key not in data:
                raise RecordError(f"pytest-tee data lacks {key!r}")
        dtype = _str_or_none(data.get("dtype"))
        # Schema 1 knew one engine: transformers, its dtype the precision, no engine settings.
        engine = EngineInfo.from_json(data.get("engine")) if schema >= 2 else EngineInfo(quantization=dtype)
        stored_key = dict(_mapping(data.get("comparison_key")))
        if stored_key and "engine" not in stored_key:
            stored_key.update(engine=LEGACY_ENGINE, quantization=stored_key.get("dtype", dtype), engine_settings={})
        known = {f for f in cls.__dataclass_fields__ if f not in ("extra",)} | {"schema"}
        return cls(
            execution_env=str(data["execution_env"]),
            checkpoint=CheckpointInfo.from_json(data["checkpoint"]),
            workload=WorkloadInfo.from_json(data["workload"]),
            metrics={str(name): _mapping(summary) for name, summary in _mapping(data["metrics"]).items()},
            samples=_samples(data["samples"], "samples"),
            engine=engine,
            device=_str_or_none(data.get("device")),
            weights=_str_or_none(data.get("weights")),
            weights_source=str(data.get("weights_source", "")),
            dtype=_str_or_none(data.get("dtype")),
            dtype_reason=str(data.get("dtype_reason", "")),
            placement=_mapping(data.get("placement")),
            threads=_int_or_none(data.get("threads")),
            interop_threads=_int_or_none(data.get("interop_threads")),
            rounds=_int_or_none(data.get("rounds")) or 0,
            warmup=_int_or_none(data.get("warmup")) or 0,
            stop_reason=str(data.get("stop_reason") or ""),
            warmup_samples=_samples(data.get("warmup_samples") or {}, "warmup_samples"),
            host=HostSnapshot.from_json(data.get("host")),
            environment_fingerprint=str(data.get("environment_fingerprint") or ""),
            versions={str(k): _str_or_none(v) for k, v in _mapping(data.get("versions")).items()},
            comparison_key=stored_key,
            serving=_mapping(data["serving"]) if isinstance(data.get("serving"), Mapping) else None,
            load=_mapping(data["load"]) if isinstance(data.get("load"), Mapping) else None,
            schema=int(schema),
            extra={key: value for key, value in data.items() if key not in known},
        )


def _samples(data: Any, name: str) -> dict[str, list[float]]:
    if not isinstance(data, Mapping):
        raise RecordError(f"{name}: expected metric → list of per-round values, got {type(data).__name__}")
    result: dict[str, list[float]] = {}
    for metric, values in data.items():
        if not isinstance(values, list) or not all(_float_or_none(value) is not None for value in values):
            raise RecordError(f"{name}[{metric!r}]: expected a list of numbers")
        result[str(metric)] = [float(value) for value in values]
    return result


def _plain(value: Any) -> Any:
    """Mappings and sequences as JSON's dicts and lists (records hold read-only mappings)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------------- verdict

OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive")
MODELS = ("rounds", "single", "history", "blocks")  # pytest_tee.baseline.models: one module each


def _finite_or_none(value: float | None) -> float | None:
    # JSON has no NaN; "no value" is null.
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class ModelDetail:
    """How the decision model reached a verdict: the data behind it and its statistics.

    ``n_base``/``n_head`` count rounds; ``sessions_base``/``sessions_head`` count sessions (history: the stored
    runs used); ``se_log`` is the standard error of log(ratio) and ``df`` the t distribution's degrees of freedom
    (session-level models); ``p_value`` is one-sided in the direction of the estimate, ``p_adjusted`` after Holm.
    """

    method: str = ""
    n_base: int | None = None
    n_head: int | None = None
    sessions_base: int | None = None
    sessions_head: int | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    se_log: float | None = None
    df: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_base": self.n_base,
            "n_head": self.n_head,
            "sessions_base": self.sessions_base,
            "sessions_head": self.sessions_head,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "se_log": _finite_or_none(self.se_log),
            "df": self.df,
        }


@dataclass(frozen=True)
class Hint:
    """For an inconclusive verdict: about ``count`` more ``unit`` would likely decide it.

    ``unit``: ``rounds`` (per side, one process), ``blocks`` (of this ab run), ``stored runs`` (of this
    fingerprint), or ``ab blocks`` (the blocks of a ``pytest-tee ab`` run that would decide it).
    """

    count: int
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "unit": self.unit}


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one benchmark and metric.

    ``base``/``head`` are the levels compared (the median of one session's rounds; with several sessions a side,
    the geometric mean of their medians), ``ratio`` the estimated head / base, ``ci95`` its 95 % interval,
    ``outcome`` one of ``OUTCOMES``, ``threshold_pct`` the limit it was judged against, ``model`` the decision
    model that judged it (one of ``MODELS``). ``detail`` says how; ``hint`` how much more data would decide an
    inconclusive verdict.
    """

    benchmark: str
    metric: str
    base: float
    head: float
    ratio: float
    ci95: tuple[float, float]
    outcome: str
    threshold_pct: float | None = None
    model: str = "rounds"
    higher_is_better: bool | None = None
    detail: ModelDetail = field(default_factory=ModelDetail)
    hint: Hint | None = None
    note: str = ""

    @property
    def change_pct(self) -> float:
        """Signed change of the level, head against base, in percent (+ means the number went up)."""
        return (self.ratio - 1.0) * 100.0

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "base": _finite_or_none(self.base),
            "head": _finite_or_none(self.head),
            "ratio": _finite_or_none(self.ratio),
            "ci95": [_finite_or_none(self.ci95[0]), _finite_or_none(self.ci95[1])],
            "change_pct": _finite_or_none(self.change_pct),
            "outcome": self.outcome,
            "threshold_pct": self.threshold_pct,
            "model": self.model,
            "higher_is_better": self.higher_is_better,
            "note": self.note,
            "hint": self.hint.to_json() if self.hint is not None else None,
            "detail": self.detail.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Verdict:
        """A verdict written by ``--tee-verdicts`` (this layout, or the flat one of pytest-tee 0.1)."""
        if not isinstance(data, Mapping) or not {"benchmark", "metric", "outcome"} <= set(data):
            raise RecordError("a verdict needs benchmark, metric and outcome")
        if data["outcome"] not in OUTCOMES:
            raise RecordError(f"outcome {data['outcome']!r} is not one of {', '.join(OUTCOMES)}")
        detail = _mapping(data.get("detail")) or data  # 0.1 wrote the details at the top level
        hint = _mapping(data.get("hint"))
        if not hint and _count(data.get("rounds_hint")) is not None:
            hint = {"count": data["rounds_hint"], "unit": data.get("hint_unit", "rounds")}
        ci = data.get("ci95")
        low, high = (ci[0], ci[1]) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)

        def number(value: Any) -> float:
            found = _float_or_none(value)
            return math.nan if found is None else found

        return cls(
            benchmark=str(data["benchmark"]),
            metric=str(data["metric"]),
            base=number(data.get("base")),
            head=number(data.get("head")),
            ratio=number(data.get("ratio")),
            ci95=(number(low), number(high)),
            outcome=str(data["outcome"]),
            threshold_pct=_float_or_none(data.get("threshold_pct")),
            model=str(data.get("model", "rounds")),
            higher_is_better=data.get("higher_is_better") if isinstance(data.get("higher_is_better"), bool) else None,
            detail=ModelDetail(
                method=str(detail.get("method") or ""),
                n_base=_count(detail.get("n_base")),
                n_head=_count(detail.get("n_head")),
                sessions_base=_count(detail.get("sessions_base")),
                sessions_head=_count(detail.get("sessions_head")),
                p_value=_float_or_none(detail.get("p_value")),
                p_adjusted=_float_or_none(detail.get("p_adjusted")),
                se_log=_float_or_none(detail.get("se_log")),
                df=_float_or_none(detail.get("df")),
            ),
            hint=Hint(int(hint["count"]), str(hint.get("unit", "rounds"))) if _count(hint.get("count")) else None,
            note=str(data.get("note") or ""),
        )
