"""The object behind the ``tee_load`` fixture: load levels against a server, stored and gated like rounds.

A load benchmark repeats one level (``serving.load``) like ``tokens_per_second`` repeats a round: warmup levels
kept apart, then ``--tee-rounds`` levels (or adaptive on ``output_tps``), each level's metrics one sample, through
pytest-benchmark's ``pedantic`` and into ``extra_info["tee"]``. The level's shape (concurrency or rate, requests)
is part of the comparison key. Failed requests are counted per level and stored by kind; a benchmark whose
error rate exceeds ``max_error_rate`` (default 0: any failure) fails *after* its result was recorded.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_tee.measure.fixture import FixtureAlreadyUsed, TokensPerSecond, _positive
from pytest_tee.measure.rounds import RoundLog
from pytest_tee.measure.throughput import ThroughputResult
from pytest_tee.measure.timing import Workload

if TYPE_CHECKING:
    from pytest_tee.serving.load import LevelResult, LoadShape
    from pytest_tee.serving.server import Server, ServerPrompt


@dataclass(frozen=True)
class LoadResult(ThroughputResult):
    """A ThroughputResult whose samples are levels; ``levels`` holds each measured level's counts and errors."""

    levels: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    @property
    def sent(self) -> int:
        return sum(int(level["sent"]) for level in self.levels)

    @property
    def failed(self) -> int:
        return sum(int(level["failed"]) for level in self.levels)


@dataclass
class LoadLog(RoundLog):
    """RoundLog whose rounds are levels; keeps each level's counts (measured and warmup) beside the metrics."""

    levels: list[dict[str, Any]] = field(default_factory=list)
    warmup_levels: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: Any) -> dict[str, float]:
        level: LevelResult = record
        values = level.metrics()
        if self.in_warmup:
            self.warmup_rounds.append(values)
            self.warmup_levels.append(level.summary())
        else:
            self.measured_rounds.append(values)
            self.levels.append(level.summary())
        return values

    def stop_metric(self) -> str:
        return "output_tps"


class LevelRound:
    """One level per round: prepare() collects garbage, timed() runs the level, take() hands it to the log."""

    def __init__(self, server: Server, prompt: ServerPrompt, workload: Workload, shape: LoadShape) -> None:
        self.server = server
        self.prompt = prompt
        self.workload = workload
        self.shape = shape
        self.prompt_tokens = prompt.token_count
        self._done = 0
        self._last: LevelResult | None = None

    def prepare(self) -> None:
        gc.collect()

    def timed(self) -> None:
        from pytest_tee.serving.load import run_level

        first = self._done * self.shape.total  # the prompt variants keep turning from level to level
        self._last = run_level(self.server, self.prompt, self.workload.new_tokens, self.shape, first_variant=first)
        self._done += 1

    def take(self) -> Any:
        level, self._last = self._last, None
        if level is None:
            from pytest_tee.measure.metrics import RoundError

            raise RoundError("no level was run")
        return level


class LoadBenchmark(TokensPerSecond):
    """``tee_load(concurrency=N | rate=R, requests=M, prompt_tokens=…, new_tokens=…) -> LoadResult``."""

    def __call__(  # type: ignore[override]
        self,
        concurrency: int | None = None,
        rate: float | None = None,
        requests: int | None = None,
        prompt_tokens: int | None = None,
        new_tokens: int | None = None,
        shape: LoadShape | None = None,
        max_error_rate: float = 0.0,
    ) -> LoadResult:
        import pytest

        from pytest_tee.engines import get_engine
        from pytest_tee.serving.load import LoadShape, LoadShapeError

        if self._used:
            raise FixtureAlreadyUsed("tee_load runs one load shape per test; parametrize with serving.load.sweep()")
        self._used = True
        context = self._context
        try:
            if shape is None:
                shape = LoadShape(concurrency=concurrency, rate=rate, requests=requests)
            elif concurrency is not None or rate is not None or requests is not None:
                raise LoadShapeError("give either shape= or concurrency/rate/requests, not both")
            workload = Workload(
                prompt_tokens=_positive("prompt_tokens", prompt_tokens, context.default_workload.prompt_tokens),
                new_tokens=_positive("new_tokens", new_tokens, context.default_workload.new_tokens),
                batch=1,
            )
            if not 0.0 <= float(max_error_rate) <= 1.0:
                raise LoadShapeError(f"max_error_rate={max_error_rate!r}: expected a fraction from 0 to 1")
        except (LoadShapeError, ValueError) as exc:
            pytest.fail(f"tee_load: {exc}", pytrace=False)
        loaded = context.default_model()
        if getattr(loaded, "engine", None) != "openai":
            pytest.skip(
                f"tee_load measures a serving engine (--tee-engine=openai --tee-endpoint=URL); this instance's engine "
                f"is {getattr(loaded, 'engine', 'transformers')}"
            )
        try:
            prompt = context.make_prompt(loaded, workload, None)
        except ValueError as exc:
            pytest.fail(f"tee_load: {exc}", pytrace=False)
        engine = get_engine("openai")
        facts = engine.describe(loaded)
        facts = dataclasses.replace(
            facts,
            settings={**facts.settings, "load": shape.to_dict()},
            key={**facts.key, "load": shape.to_dict()},
        )
        runner = LevelRound(loaded.model, prompt, workload, shape)
        log = LoadLog(workload, context.plan)
        gate_check = context.gate_check(context.fullname) if context.gate_check else None
        bench = context.benchmark() if context.benchmark is not None else None
        self._run(runner, log, gate_check, bench)
        summaries = log.summaries()
        measurement = self._record(loaded, workload, prompt, log, facts, summaries)
        measurement = dataclasses.replace(
            measurement, load={"shape": shape.to_dict(), "levels": log.levels, "warmup_levels": log.warmup_levels}
        )
        result = self._store(measurement, summaries, bench, LoadResult, levels=tuple(log.levels))
        self.result = result
        if result.sent and result.failed > max_error_rate * result.sent:
            pytest.fail(failure_text(result), pytrace=False)
        return result


def failure_text(result: LoadResult) -> str:
    kinds: dict[str, int] = {}
    messages: dict[str, str] = {}
    for level in result.levels:
        for kind, count in level["errors"].items():
            kinds[kind] = kinds.get(kind, 0) + count
        for kind, message in level["error_messages"].items():
            messages.setdefault(kind, message)
    listed = "; ".join(f"{kind} ×{count}: {messages.get(kind, '')}" for kind, count in kinds.items())
    return (
        f"tee_load: {result.failed} of {result.sent} requests failed (results recorded with the failures counted): "
        f"{listed}"
    )


__all__ = ["LoadBenchmark", "LoadLog", "LoadResult"]
