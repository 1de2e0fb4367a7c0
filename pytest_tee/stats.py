"""The statistics of pytest-tee: medians with their CI, ratios of medians with a seeded bootstrap CI, their means,
and the rank test of the rounds model.

Each ratio gets its own random stream, derived from the seed and the ratio's name, so adding a run to a report
does not move the CIs of the rows it does not touch, and the same inputs always give the same report.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_tee.measure.metrics import METRICS, summarize

RESAMPLES = 10_000
DEFAULT_SEED = 0
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A metric in one cell: the median of the measured rounds and the distribution-free CI of that median."""

    median: float
    ci95: tuple[float, float] | None
    ci_level: float | None  # the CI's exact coverage (below 0.95 with fewer than 6 rounds)
    n: int
    unit: str
    source: str  # "samples" (recomputed from the per-round samples) or "stored summary"

    def to_dict(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "ci95": list(self.ci95) if self.ci95 else None,
            "ci_level": self.ci_level,
            "n": self.n,
            "unit": self.unit,
            "source": self.source,
        }


def estimate(metric: str, samples: Sequence[float], stored: Mapping[str, Any] | None) -> Estimate | None:
    """From the per-round samples (as the fixture summarised them); the stored summary only when samples are absent."""
    values = [value for value in samples if math.isfinite(value)]
    unit = METRICS[metric].unit if metric in METRICS else ""
    if values:
        summary = summarize(metric, values) if metric in METRICS else None
        if summary is not None:
            ci = summary.ci95 if summary.n >= 2 else None  # one round: an interval of one point says nothing
            return Estimate(summary.median, ci, summary.ci_level, summary.n, summary.unit, "samples")
        return Estimate(float(np.median(values)), None, None, len(values), unit, "samples")
    if isinstance(stored, Mapping) and isinstance(stored.get("median"), (int, float)):
        ci = stored.get("ci95")
        ci95 = (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
        level = stored.get("ci_level")
        return Estimate(
            median=float(stored["median"]),
            ci95=ci95,
            ci_level=float(level) if isinstance(level, (int, float)) else None,
            n=int(stored.get("n", 0) or 0),
            unit=str(stored.get("unit", unit)),
            source="stored summary",
        )
    return None


@dataclass(frozen=True)
class RatioEstimate:
    """numerator median ÷ denominator median, with a percentile-bootstrap CI and the bootstrap replicates."""

    value: float
    ci95: tuple[float, float] | None
    replicates: np.ndarray | None  # RESAMPLES ratios, kept to bootstrap the mean across rows


def stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _median_ratio(top: np.ndarray, bottom: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.median(top, axis=axis) / np.median(bottom, axis=axis)


def ratio_of_medians(
    numerator: Iterable[float], denominator: Iterable[float], *, seed: int, name: str, resamples: int = RESAMPLES
) -> RatioEstimate | None:
    """Ratio of the two medians with a percentile-bootstrap 95 % CI (``scipy.stats.bootstrap``): each side is
    resampled on its own (they are separate sets of rounds). The replicates are kept to bootstrap means of ratios.

    With fewer than two rounds on a side there is nothing to resample: the ratio comes without a CI.
    """
    from scipy.stats import bootstrap

    top = np.asarray([v for v in numerator if math.isfinite(v)], dtype=float)
    bottom = np.asarray([v for v in denominator if math.isfinite(v)], dtype=float)
    if top.size == 0 or bottom.size == 0 or np.median(bottom) == 0:
        return None
    value = float(np.median(top) / np.median(bottom))
    if top.size < 2 or bottom.size < 2:
        return RatioEstimate(value, None, None)
    result = bootstrap(
        (top, bottom),
        _median_ratio,
        n_resamples=resamples,
        paired=False,
        vectorized=True,
        method="percentile",
        confidence_level=CI_LEVEL,
        rng=stream(seed, name),
    )
    replicates = np.asarray(result.bootstrap_distribution)
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        return RatioEstimate(value, None, None)
    return RatioEstimate(value, percentile_ci(replicates), replicates)


def mann_whitney_p(base: Iterable[float], head: Iterable[float], *, head_lower: bool) -> float:
    """One-sided Mann–Whitney U p-value that head's values are lower (``head_lower``) or higher than base's.

    scipy picks the exact null distribution for small samples without ties, else the normal approximation.
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(head, base, alternative="less" if head_lower else "greater").pvalue)


def ratio_of_values(numerator: float, denominator: float) -> RatioEstimate | None:
    """For cells known only by a stored median (no samples): the ratio, without a CI."""
    if denominator == 0:
        return None
    return RatioEstimate(numerator / denominator, None, None)


def percentile_ci(replicates: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def mean_of_ratios(estimates: Sequence[RatioEstimate]) -> tuple[float, tuple[float, float] | None]:
    """Arithmetic mean across rows (as the paper averages across model sizes) with a CI from the replicates.

    Rows are independent measurements, so the mean's replicate i is the mean of each row's replicate i.
    """
    value = float(np.mean([item.value for item in estimates]))
    if any(item.replicates is None for item in estimates):
        return value, None
    size = min(item.replicates.size for item in estimates if item.replicates is not None)
    stacked = np.vstack([item.replicates[:size] for item in estimates if item.replicates is not None])
    return value, percentile_ci(stacked.mean(axis=0))
