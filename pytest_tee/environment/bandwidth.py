"""Sustained memory read bandwidth, for roofline numbers.

Decode on a CPU is memory bound: each new token reads (about) every weight once, so the ceiling is
``bandwidth ÷ bytes read per token`` and a measured decode rate can be put against it
(``decode tok/s × bytes per token ÷ bandwidth`` = the fraction of the roofline reached). The measurement is a
multithreaded ``torch.sum`` over a buffer far larger than the last-level cache, timed repeatedly; the median
rate is the headline and the best is kept beside it. Importing torch costs seconds, so it happens inside.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

METHOD = "torch.sum over a float32 buffer (read-only stream), median of repetitions"
MIN_REPETITIONS = 3
MAX_REPETITIONS = 1000


def measure_read_bandwidth(*, size_mib: int = 1024, seconds: float = 3.0, threads: int | None = None) -> dict[str, Any]:
    """Read bandwidth in GB/s (10^9 bytes/s); ``threads`` None keeps torch's intra-op thread count.

    At least three timed repetitions run, more until ``seconds`` of timing have passed. The buffer is written once
    before timing so page faults (and, in a TD, lazy memory acceptance) stay out of the measurement.
    """
    if size_mib < 1:
        raise ValueError(f"size_mib must be at least 1, got {size_mib}")
    if seconds <= 0:
        raise ValueError(f"seconds must be above 0, got {seconds}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    import torch

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        buffer = torch.ones(size_mib * 2**20 // 4, dtype=torch.float32)
        buffer.sum()  # warm-up: caches, thread pool, first-touch effects
        durations: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(durations) < MIN_REPETITIONS or (time.perf_counter() < deadline and len(durations) < MAX_REPETITIONS):
            start = time.perf_counter()
            buffer.sum()
            durations.append(time.perf_counter() - start)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
    size_bytes = size_mib * 2**20
    rates = [size_bytes / duration / 1e9 for duration in durations]
    return {
        "method": METHOD,
        "buffer_mib": size_mib,
        "threads": used_threads,
        "repetitions": len(durations),
        "read_gbps": round(statistics.median(rates), 2),
        "read_gbps_best": round(max(rates), 2),
        "seconds_per_pass_median": statistics.median(durations),
        "torch": torch.__version__,
    }
