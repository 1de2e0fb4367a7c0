"""Progress of a running benchmark, shown by default: a benchmark that runs for minutes must show that it lives.

The fixture reports every round as a ``RoundProgress``; ``ProgressWriter`` decides what to show:

- ``rounds`` (``-v``): one line per round, warmup included;
- ``live`` (default on a terminal): one line rewritten in place — checkpoint, round i of N, the median so far and
  the time left — left standing when the benchmark ends;
- ``lines`` (default when output is not a terminal, as in CI logs): the same line at most every
  ``LINE_INTERVAL_S`` seconds, so a short benchmark prints nothing and a long one a line every 12 s;
- nothing with ``-q``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LINE_INTERVAL_S = 12.0  # the issue asks for a line every 10–15 s where output is not a terminal
MODES = ("rounds", "live", "lines", "off")


@dataclass(frozen=True)
class RoundProgress:
    """Where a benchmark stands after a round (or at its end, ``finished``)."""

    checkpoint: str  # the checkpoint id, or the model's name
    warmup: bool  # this was a warmup round
    done: int  # rounds done of this kind (warmup or measured)
    planned: int  # warmup rounds, or measured rounds (the minimum with adaptive rounds)
    cap: int  # at most this many (= planned unless adaptive)
    metric: str  # the stopping metric, e.g. decode_tps
    value: float  # this round's value of it
    median: float | None  # median of the measured rounds so far (None during warmup)
    ttft_s: float
    left_s: float | None  # estimated seconds to the planned rounds (None: not known yet)
    finished: bool = False

    @property
    def position(self) -> str:
        """Where the rounds are: "warmup 1/2", "round 3/5", or "round 3/5-50" while adaptive rounds may go on."""
        if self.warmup:
            return f"warmup {self.done}/{self.planned}"
        total = f"{self.planned}" if self.cap == self.planned else f"{self.planned}-{self.cap}"
        return f"round {self.done}/{total}"

    def round_line(self) -> str:
        """The per-round line of ``-v``."""
        return f"{self.position}: {self.metric} {self.value:.2f} tok/s, ttft {self.ttft_s * 1e3:.0f} ms"

    def status_line(self) -> str:
        """The one-line status of ``live`` and ``lines``: checkpoint, round i of N, median so far, time left."""
        where = self.position
        median = f", median {self.median:.4g} tok/s" if self.median is not None else ""
        if self.finished:
            left = ", done"
        elif self.left_s is not None:
            left = f", ~{_duration(self.left_s)} left" + (" (to the minimum)" if self.cap != self.planned else "")
        else:
            left = ""
        return f"[tee] {self.checkpoint}: {where} {self.metric}{median}{left}"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{max(0.0, seconds):.0f} s"


class ProgressWriter:
    """Shows ``RoundProgress`` updates in one of ``MODES``; ``line`` writes a line, ``rewrite`` replaces the live one.

    ``start_live`` is called once before the first live line (to end the runner's own partial line).
    """

    def __init__(
        self,
        mode: str,
        line: Callable[[str], None],
        rewrite: Callable[[str], None] | None = None,
        start_live: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self._line = line
        self._rewrite = rewrite
        self._start_live = start_live
        self._clock = clock
        self._interval = LINE_INTERVAL_S if interval_s is None else interval_s
        self._last: float | None = None
        self._live = False

    def __call__(self, update: RoundProgress) -> None:
        if self.mode == "rounds":
            if not update.finished:
                self._line(f"    [tee] {update.round_line()}")
        elif self.mode == "live" and self._rewrite is not None:
            if not self._live and self._start_live is not None:
                self._start_live()
            self._live = True
            self._rewrite(update.status_line())
        elif self.mode == "lines":
            now = self._clock()
            if self._last is None:
                self._last = now  # the first update starts the clock: short benchmarks print nothing
            elif now - self._last >= self._interval and not update.finished:
                self._last = now
                self._line(update.status_line())
