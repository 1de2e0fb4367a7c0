"""What each metric means, and the arithmetic from one round's timestamps to its values.

A round is one ``generate`` call. The streamer stamps the clock when each new token reaches the host, so for a
round producing N tokens per sequence we have ``start``, ``token_times[0..N-1]`` and ``end``:

- ``ttft_s``      = token_times[0] − start                 (prefill plus the first sampling step)
- ``prefill_tps`` = batch × prompt_tokens / ttft_s
- ``decode_tps``  = batch × (N − 1) / (token_times[N−1] − token_times[0])   (needs N ≥ 2)
- ``e2e_tps``     = batch × N / (end − start)
- ``itl_pXX_ms``  = percentile of the N − 1 gaps between consecutive tokens (needs N ≥ 2)

Rates count tokens of every sequence in the batch (the optimum-benchmark convention), so batch 4 at 10 steps/s
decodes at 40 tok/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from pytest_tee.records import Summary

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("decode_tps", "tok/s", True, "tokens per second after the first token (batch × (N−1) / decode time)"),
        Metric("prefill_tps", "tok/s", True, "prompt tokens per second up to the first new token"),
        Metric("e2e_tps", "tok/s", True, "new tokens per second over the whole generate call"),
        Metric("ttft_s", "s", False, "time to first token: start of generate to the first new token"),
        Metric("itl_p50_ms", "ms", False, "median gap between consecutive new tokens"),
        Metric("itl_p90_ms", "ms", False, "90th percentile gap between consecutive new tokens"),
        Metric("itl_p99_ms", "ms", False, "99th percentile gap between consecutive new tokens"),
        Metric("peak_rss_mib", "MiB", False, "peak resident memory of this process during the round"),
        Metric("peak_gpu_mib", "MiB", False, "peak CUDA memory allocated by torch during the round"),
        # A load level (tee_load): many requests to a server; the ITL percentiles above pool every request's gaps.
        Metric("output_tps", "tok/s", True, "output tokens of completed requests per second of the level"),
        Metric("request_rate", "req/s", True, "completed requests per second of the level"),
        Metric("ttft_p50_s", "s", False, "median time to first token over the level's completed requests"),
        Metric("ttft_p90_s", "s", False, "90th percentile time to first token over the level's requests"),
        Metric("ttft_p99_s", "s", False, "99th percentile time to first token over the level's requests"),
        Metric("e2e_p50_s", "s", False, "median request latency, send to last token"),
        Metric("e2e_p99_s", "s", False, "99th percentile request latency, send to last token"),
        Metric("error_rate", "ratio", False, "failed requests / requests sent in the level (every failure counted)"),
    )
}


class RoundError(RuntimeError):
    """A round whose timestamps cannot give a measurement (wrong token count, clock going backwards)."""


@dataclass(frozen=True)
class RoundTimes:
    """The clock readings of one round (seconds from any monotonic origin)."""

    start: float
    token_times: tuple[float, ...]
    end: float


def round_metrics(times: RoundTimes, *, prompt_tokens: int, new_tokens: int, batch: int) -> dict[str, float]:
    """The timing metrics of one round; metrics undefined for this workload (decode with N = 1) are left out."""
    stamps = times.token_times
    if len(stamps) != new_tokens:
        raise RoundError(f"expected {new_tokens} new-token timestamps, got {len(stamps)}")
    if new_tokens < 1 or batch < 1:
        raise RoundError("a round needs at least one new token and one sequence")
    if stamps[0] < times.start or times.end < stamps[-1] or any(b < a for a, b in pairwise(stamps)):
        raise RoundError("timestamps are not in order (start ≤ tokens ≤ end)")
    ttft = stamps[0] - times.start
    total = times.end - times.start
    if ttft <= 0 or total <= 0:
        raise RoundError("a round took no measurable time; the clock is too coarse for this workload")
    values = {
        "ttft_s": ttft,
        "prefill_tps": batch * prompt_tokens / ttft,
        "e2e_tps": batch * new_tokens / total,
    }
    if new_tokens >= 2:
        import numpy as np

        decode = stamps[-1] - stamps[0]
        if decode <= 0:
            raise RoundError("the decode phase took no measurable time")
        gaps_ms = np.diff(np.asarray(stamps, dtype=float)) * 1e3
        values["decode_tps"] = batch * (new_tokens - 1) / decode
        p50, p90, p99 = np.percentile(gaps_ms, [50, 90, 99])
        values.update(itl_p50_ms=float(p50), itl_p90_ms=float(p90), itl_p99_ms=float(p99))
    return values


def median_ci(samples: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Order-statistic confidence interval of the median: (low, high, exact coverage).

    Distribution-free (binomial), so it holds for the skewed distributions timings have. With fewer than 6
    samples even [min, max] covers less than 95 %; the coverage returned says so.
    """
    import numpy as np
    from scipy.stats import binom

    data = np.sort(np.asarray(samples, dtype=float))
    n = data.size
    if n == 0:
        raise ValueError("no samples")
    if n == 1:
        return float(data[0]), float(data[0]), 0.0
    # X(j) ≤ median ≤ X(k) (0-based) exactly when j + 1 ≤ B ≤ k, B = samples below the median ~ Binomial(n, ½).
    for j in range((n - 1) // 2, -1, -1):  # widen symmetrically until the coverage reaches `level`
        k = n - 1 - j
        coverage = float(binom.cdf(k, n, 0.5) - binom.cdf(j, n, 0.5))
        if coverage >= level:
            break
    return float(data[j]), float(data[k]), coverage


def summarize(name: str, samples: Sequence[float]) -> Summary:
    import numpy as np

    metric = METRICS[name]
    data = np.asarray(samples, dtype=float)
    if data.size == 0:
        raise ValueError(f"no samples for {name}")
    low, high, coverage = median_ci(data)
    p5, p95 = np.percentile(data, [5, 95])
    return Summary(
        median=float(np.median(data)),
        mean=float(data.mean()),
        stdev=float(data.std(ddof=1)) if data.size > 1 else 0.0,
        p5=float(p5),
        p95=float(p95),
        ci95=(low, high),
        ci_level=coverage,
        n=int(data.size),
        unit=metric.unit,
        higher_is_better=metric.higher_is_better,
    )
