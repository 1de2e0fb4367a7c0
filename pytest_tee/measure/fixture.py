"""The object behind the ``tokens_per_second`` fixture: rounds through ``benchmark.pedantic``, metrics in extra_info."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_tee.compat import keep_benchmark_rounds
from pytest_tee.confidential import confidential
from pytest_tee.measure.metrics import RoundError
from pytest_tee.measure.progress import RoundProgress
from pytest_tee.measure.rounds import GateCheck, RoundLog, RoundPlan
from pytest_tee.measure.throughput import ThroughputResult
from pytest_tee.measure.timing import Workload
from pytest_tee.records import (
    CheckpointInfo,
    EngineInfo,
    HostSnapshot,
    StoredMeasurement,
    Summary,
    WorkloadInfo,
)

if TYPE_CHECKING:
    from pytest_tee.engines.base import TimedRound


R = TypeVar("R", bound=ThroughputResult)


class FixtureAlreadyUsed(Exception):
    """tokens_per_second measures one workload per test, like pytest-benchmark's ``benchmark``."""


@dataclass
class MeasureContext:
    """What the fixture needs from the session; built by the plugin, small enough to fake in tests."""

    plan: RoundPlan
    default_workload: Workload
    execution_env: Any  # ExecutionEnv
    environment_fingerprint: str
    host_snapshot: HostSnapshot
    default_model: Callable[[], Any]  # -> LoadedModel, loaded only when the test passes no model
    make_prompt: Callable[..., Any]  # -> Prompt (input_ids, attention_mask, sha256, token_count, source)
    benchmark: Callable[[], Any] | None = None  # -> pytest-benchmark's fixture, when that plugin is active
    threads: int | None = None
    gate_check: Callable[[str], GateCheck | None] | None = None  # fullname -> check, when a baseline is loaded
    progress: Callable[[RoundProgress], None] | None = None
    update_result: Callable[[dict[str, Any]], None] | None = None  # may add fields to the stored JSON in place
    on_result: Callable[[ThroughputResult], None] | None = None
    fullname: str = ""


class TokensPerSecond:
    def __init__(self, context: MeasureContext) -> None:
        self._context = context
        self._used = False
        self.result: ThroughputResult | None = None
        self._checkpoint = ""  # for progress lines
        self._round_s = 0.0  # the last round's wall time, for the time left

    def __call__(
        self,
        prompt_tokens: int | None = None,
        new_tokens: int | None = None,
        batch: int | None = None,
        prompt: str | None = None,
        model: Any = None,
    ) -> ThroughputResult:
        __tracebackhide__ = True  # this frame holds the prompt text as an argument; pytest would print it
        prompt = confidential(prompt)
        if self._used:
            raise FixtureAlreadyUsed(
                "tokens_per_second can be called once per test (one workload, one stored result); "
                "parametrize the test to measure several workloads"
            )
        self._used = True
        context = self._context
        loaded = as_loaded(model) if model is not None else context.default_model()
        try:
            requested = Workload(
                prompt_tokens=_positive("prompt_tokens", prompt_tokens, context.default_workload.prompt_tokens),
                new_tokens=_positive("new_tokens", new_tokens, context.default_workload.new_tokens),
                batch=_positive("batch", batch, context.default_workload.batch),
            )
            prompt_ids = context.make_prompt(loaded, requested, prompt)
        except ValueError as exc:  # bad arguments or an unusable prompt: the test's input, not a crash
            import pytest

            pytest.fail(f"tokens_per_second: {exc}", pytrace=False)
        from pytest_tee.engines import get_engine

        engine = get_engine(getattr(loaded, "engine", "transformers"))
        if getattr(loaded, "device", None) is None:  # a model passed in that could not say where it lives
            loaded.device = context.execution_env.torch_device
        workload = Workload(prompt_ids.token_count, requested.new_tokens, requested.batch)
        try:
            runner = engine.rounds(loaded, prompt_ids, workload, context.threads)
        except ValueError as exc:  # a workload this engine cannot run (EngineError): the test's input
            import pytest

            pytest.fail(f"tokens_per_second: {exc}", pytrace=False)
        facts = engine.describe(loaded)
        log = RoundLog(workload, context.plan)
        gate_check = context.gate_check(context.fullname) if context.gate_check else None
        # Requested only now: a test skipped while loading its model leaves pytest-benchmark untouched.
        bench = context.benchmark() if context.benchmark is not None else None
        self._checkpoint = str(loaded.describe().get("checkpoint", {}).get("id", ""))
        self._run(runner, log, gate_check, bench)
        self._report_progress(log, log.measured_rounds[-1] if log.measured_rounds else {}, False, finished=True)
        summaries = log.summaries()
        measurement = self._record(loaded, workload, prompt_ids, log, facts, summaries)
        result = self._store(measurement, summaries, bench, ThroughputResult)
        self.result = result
        return result

    def _store(
        self, measurement: StoredMeasurement, summaries: Mapping[str, Summary], bench: Any, kind: type[R], **extra: Any
    ) -> R:
        """The measurement after the update hook (what a hook added is kept, and checked), as the result, handed to
        the session and to pytest-benchmark's ``extra_info``."""
        context = self._context
        if context.update_result is not None:
            stored = measurement.to_json()
            context.update_result(stored)
            measurement = StoredMeasurement.from_json(stored)
        result = kind(
            metrics=summaries,
            rounds=measurement.rounds,
            warmup=measurement.warmup,
            workload=measurement.workload.to_json(),
            samples=measurement.samples,
            warmup_samples=measurement.warmup_samples,
            stop_reason=measurement.stop_reason,
            execution_env=measurement.execution_env,
            measurement=measurement,
            **extra,
        )
        if context.on_result is not None:
            context.on_result(result)
        if bench is not None and not getattr(bench, "disabled", False):
            bench.extra_info["tee"] = measurement.to_json()
        return result

    # ---------------------------------------------------------------------------------------------------------
    def _run(self, runner: TimedRound, log: RoundLog, gate_check: GateCheck | None, bench: Any) -> None:
        plan = log.plan
        state: dict[str, Any] = {"stopped": False, "started": None, "mark": time.monotonic()}

        def setup() -> None:
            if not state["stopped"]:
                if state["started"] is None and not log.in_warmup:
                    state["started"] = time.monotonic()
                runner.prepare()

        def target() -> None:
            if not state["stopped"]:
                runner.timed()

        def teardown() -> None:
            if state["stopped"]:
                return
            was_warmup = log.in_warmup
            values = log.add(runner.take())
            now = time.monotonic()
            self._round_s, state["mark"] = now - state["mark"], now
            self._report_progress(log, values, was_warmup)
            if not was_warmup:
                elapsed = time.monotonic() - state["started"]
                reason = log.decide_stop(elapsed, gate_check)
                if reason is not None:
                    log.stop_reason = reason
                    state["stopped"] = True

        if bench is not None and not getattr(bench, "disabled", False):
            bench.pedantic(target, setup=setup, teardown=teardown, rounds=plan.cap, warmup_rounds=plan.warmup)
            # pedantic needs its round count up front; rounds after an adaptive stop were no-ops: drop their times.
            keep_benchmark_rounds(bench, len(log.measured_rounds))
            return
        while not state["stopped"]:
            setup()
            target()
            teardown()

    def _report_progress(
        self, log: RoundLog, values: Mapping[str, float], warmup: bool, *, finished: bool = False
    ) -> None:
        progress = self._context.progress
        metric = log.stop_metric()
        if progress is None or metric not in values:
            return
        plan = log.plan
        done = len(log.warmup_rounds) if warmup else len(log.measured_rounds)
        rounds_left = (plan.warmup - done + plan.rounds) if warmup else max(0, plan.rounds - done)
        measured = log.samples(metric)
        progress(
            RoundProgress(
                checkpoint=self._checkpoint,
                warmup=warmup,
                done=done,
                planned=plan.warmup if warmup else plan.rounds,
                cap=plan.warmup if warmup else plan.cap,
                metric=metric,
                value=values[metric],
                median=statistics.median(measured) if measured and not warmup else None,
                ttft_s=values.get("ttft_s", values.get("ttft_p50_s", 0.0)),
                left_s=rounds_left * self._round_s,  # the last round's time: warmup rounds are often slower
                finished=finished,
            )
        )

    def _record(
        self,
        loaded: Any,
        workload: Workload,
        prompt: Any,
        log: RoundLog,
        engine: EngineInfo,
        metrics: Mapping[str, Any],
    ) -> StoredMeasurement:
        context = self._context
        described = dict(loaded.describe())
        dtype = described.get("dtype", "unknown")
        endpoint = engine.settings.get("endpoint")
        remote = isinstance(endpoint, Mapping) and endpoint.get("location") == "remote"
        return StoredMeasurement(
            # A remote server runs outside this host's environment: its results are labelled remote, not ours.
            execution_env="remote" if remote else context.execution_env.name,
            engine=engine,
            device=described.get("device") or context.execution_env.torch_device,
            checkpoint=CheckpointInfo.from_json(described["checkpoint"]),
            weights=described.get("weights", "unknown"),
            weights_source=described.get("weights_source", ""),
            dtype=dtype,
            dtype_reason=described.get("dtype_reason", ""),
            placement=described.get("placement", {}),
            workload=WorkloadInfo(
                prompt_tokens=workload.prompt_tokens,
                new_tokens=workload.new_tokens,
                batch=workload.batch,
                prompt_sha256=prompt.sha256,
                prompt_source=prompt.source,
            ),
            threads=engine.settings.get("threads"),
            interop_threads=engine.settings.get("interop_threads"),
            rounds=len(log.measured_rounds),
            warmup=len(log.warmup_rounds),
            stop_reason=log.stop_reason or "",
            metrics={name: summary.to_json() for name, summary in metrics.items()},
            samples={name: log.samples(name) for name in metrics},
            warmup_samples={name: values for name in metrics if (values := log.samples(name, warmup=True))},
            host=context.host_snapshot,
            environment_fingerprint=context.environment_fingerprint,
            versions=_library_versions(),
            serving=serving_block(endpoint, context.execution_env.name) if isinstance(endpoint, Mapping) else None,
        )


def serving_block(endpoint: Mapping[str, Any], execution_env: str) -> dict[str, Any]:
    """Where a measured server ran. A local one shares this host's environment record (and its TEE, when it has
    one); for a remote one the host is recorded and any trust boundary it may run in is unverified."""
    block = dict(endpoint)
    if endpoint.get("location") == "remote":
        block["tee"] = "unverified"
        block["note"] = (
            "remote endpoint: the environment record describes the client; no evidence from the server's host binds "
            "these results"
        )
    else:
        block["tee"] = execution_env
        block["note"] = "local endpoint: the server shares this host's environment record"
    return block


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"tokens_per_second({name}={value!r}): expected a whole number of at least 1")
    return value


def as_loaded(model: Any) -> Any:
    """A LoadedModel as is; any other model (a transformers model a test built itself) wrapped to look like one."""
    if hasattr(model, "checkpoint") and callable(getattr(model, "describe", None)):
        return model
    return PlainModel(model)


class PlainModel:
    """A model the test built itself: identified by its config and weights, never by anything it generated."""

    checkpoint = None
    tokenizer = None
    engine = "transformers"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.dtype: str
        self.device: str | None
        try:
            first = next(model.parameters())
            self.dtype, self.device = str(first.dtype).removeprefix("torch."), str(first.device)
            self.parameters: int | None = sum(p.numel() for p in model.parameters())
        except (AttributeError, StopIteration, TypeError):
            self.dtype, self.device, self.parameters = "unknown", None, None

    def describe(self) -> dict[str, Any]:
        config = getattr(self.model, "config", None)
        name = getattr(config, "_name_or_path", "") or type(self.model).__name__
        return {
            "checkpoint": {
                "id": f"custom:{name}",
                "repo_id": name,
                "architecture": type(self.model).__name__,
                "parameters": self.parameters,
            },
            "weights": "custom",
            "weights_source": "passed to tokens_per_second(model=...)",
            "dtype": self.dtype,
            "device": self.device,
        }


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("torch", "transformers", "accelerate", "pytest-benchmark", "pytest-tee"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


__all__ = ["FixtureAlreadyUsed", "MeasureContext", "RoundError", "TokensPerSecond"]
