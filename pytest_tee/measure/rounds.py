"""How many rounds: warmup rounds kept apart, then a fixed count or adaptive sampling with a recorded reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_tee.measure.metrics import METRICS, round_metrics, summarize
from pytest_tee.measure.timing import RoundRecord, Workload
from pytest_tee.records import Summary

# Decode rate is what users gate on; with a single new token there is no decode phase, so e2e stands in.


def stopping_metric(workload: Workload) -> str:
    return "decode_tps" if workload.new_tokens >= 2 else "e2e_tps"


@dataclass(frozen=True)
class RoundPlan:
    """Fixed rounds (target_ci_pct None) or adaptive: at least ``rounds``, at most ``max_rounds`` and ``max_time``."""

    rounds: int
    warmup: int
    target_ci_pct: float | None = None
    max_rounds: int = 50
    max_time_s: float = 600.0

    @property
    def adaptive(self) -> bool:
        return self.target_ci_pct is not None

    @property
    def cap(self) -> int:
        return self.max_rounds if self.adaptive else self.rounds


# While a baseline verdict is still inconclusive it returns a note (keep sampling); once decided, None.
GateCheck = Callable[["RoundLog"], str | None]


@dataclass
class RoundLog:
    """Per-round metric values as rounds complete, and the stopping decision."""

    workload: Workload
    plan: RoundPlan
    warmup_rounds: list[dict[str, float]] = field(default_factory=list)
    measured_rounds: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str | None = None

    def add(self, record: RoundRecord) -> dict[str, float]:
        values = round_metrics(
            record.times,
            prompt_tokens=self.workload.prompt_tokens,
            new_tokens=self.workload.new_tokens,
            batch=self.workload.batch,
        )
        if record.peak_rss_mib is not None:
            values["peak_rss_mib"] = record.peak_rss_mib
        if record.peak_gpu_mib is not None:
            values["peak_gpu_mib"] = record.peak_gpu_mib
        target = self.warmup_rounds if len(self.warmup_rounds) < self.plan.warmup else self.measured_rounds
        target.append(values)
        return values

    @property
    def in_warmup(self) -> bool:
        return len(self.warmup_rounds) < self.plan.warmup

    def samples(self, metric: str, *, warmup: bool = False) -> list[float]:
        rounds = self.warmup_rounds if warmup else self.measured_rounds
        return [values[metric] for values in rounds if metric in values]

    def decide_stop(self, elapsed_s: float, gate_check: GateCheck | None = None) -> str | None:
        """After a measured round: the reason to stop now, or None to take another round."""
        n = len(self.measured_rounds)
        plan = self.plan
        if not plan.adaptive:
            return f"fixed: {plan.rounds} rounds" if n >= plan.rounds else None
        if n < plan.rounds:
            return None
        metric = self.stop_metric()
        samples = self.samples(metric)
        precise = ci_half_width_pct(metric, samples) <= plan.target_ci_pct  # type: ignore[operator]
        undecided = gate_check(self) if precise and gate_check is not None else None
        if precise and undecided is None:
            return f"precision: 95% CI of median {metric} within ±{plan.target_ci_pct:g}% after {n} rounds"
        if n >= plan.max_rounds:
            return f"round cap: {plan.max_rounds} rounds" + (f" ({undecided})" if undecided else "")
        if elapsed_s >= plan.max_time_s:
            return f"time budget: {plan.max_time_s:g} s after {n} rounds" + (f" ({undecided})" if undecided else "")
        return None

    def stop_metric(self) -> str:
        """The metric whose CI decides adaptive stopping."""
        return stopping_metric(self.workload)

    def summaries(self) -> dict[str, Summary]:
        return {name: summarize(name, values) for name in METRICS if (values := self.samples(name))}


def ci_half_width_pct(metric: str, samples: Sequence[float]) -> float:
    return summarize(metric, samples).ci_half_width_pct if len(samples) >= 2 else float("inf")
