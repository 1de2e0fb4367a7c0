"""What ``tokens_per_second(...)`` returns, and what it stores in ``extra_info["tee"]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_tee.records import StoredMeasurement, Summary


@dataclass(frozen=True)
class ThroughputResult:
    """The measured rounds of one benchmark: per-metric summaries and every per-round sample.

    ``result["decode_tps"].median`` is the median decode rate; ``result.samples["decode_tps"]`` the rounds.
    """

    metrics: Mapping[str, Summary]
    rounds: int
    warmup: int
    workload: Mapping[str, Any]
    samples: Mapping[str, list[float]] = field(default_factory=dict)
    warmup_samples: Mapping[str, list[float]] = field(default_factory=dict)
    stop_reason: str = ""
    execution_env: str = ""
    measurement: StoredMeasurement | None = field(default=None, repr=False)  # stored as extra_info["tee"]

    def __getitem__(self, metric: str) -> Summary:
        try:
            return self.metrics[metric]
        except KeyError:
            raise KeyError(f"no metric {metric!r} in this result; it has {', '.join(self.metrics)}") from None

    def median(self, metric: str) -> float:
        return self[metric].median
