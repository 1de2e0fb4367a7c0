"""An injected decode slowdown for the gate evaluation: extra CPU work in every decoding step.

Each decoding step (a forward over one new position per sequence; the prefill is left alone, so TTFT is not
touched) spins for ``stretch`` times the CPU time the step before it took, measured on the calling thread. Extra
work proportional to the step's own work behaves like a real regression: on a busy machine it stretches with the
load as the rest of the step does, so the drop of the decode rate does not depend on how busy the machine is at
the moment (a fixed wall-clock delay is a smaller drop in a slow session and a larger one in a quick session).

The nominal stretch for a 10 % drop of the rate is 1/0.9 − 1 = 0.111, but spinning also slows the step's own work
a little (measured: a nominal 10 % gave 13–15 % on the shared 2-core machine), so ``run.py`` calibrates the stretch
against alternating rounds with and without it and records the drop it really causes.

The spin is on ``time.thread_time`` (CPU time), not ``time.sleep``: sleeping overshoots, and it hands the core to a
neighbour, which real extra work does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

VARIABLE = "PYTEST_TEE_EVAL_STRETCH"


def nominal_stretch(drop: float) -> float:
    """The extra work per step, as a fraction of the step, that lowers the rate by ``drop`` if nothing else changes."""
    return 1.0 / (1.0 - drop) - 1.0


def spin(seconds: float, clock: Callable[[], float] = time.thread_time) -> None:
    deadline = clock() + seconds
    while clock() < deadline:
        pass


def is_decode_step(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A forward over one new position per sequence (with the KV cache): a decoding step, not the prefill."""
    input_ids = kwargs.get("input_ids", args[0] if args else None)
    if input_ids is None:
        embeds = kwargs.get("inputs_embeds")
        return embeds is not None and embeds.shape[1] == 1
    return input_ids.shape[-1] == 1


class DecodeSlowdown:
    """A forward pre-hook (``register_forward_pre_hook(hook, with_kwargs=True)``) adding ``stretch`` × a step's work.

    A step's work is the CPU time from one step's start to the next one's, less the spin added to it; the first
    step of a round uses the estimate from the round before (the first round is warmup).
    """

    def __init__(self, stretch: float, clock: Callable[[], float] = time.thread_time) -> None:
        if not 0.0 <= stretch < 10.0:
            raise ValueError(f"stretch {stretch!r}: expected a fraction of a step's work in [0, 10), e.g. 0.111")
        self.stretch = stretch
        self._clock = clock
        self._step_started: float | None = None
        self._step_spin = 0.0
        self._step_work: float | None = None
        self.steps = 0
        self.spin_total_s = 0.0

    def __call__(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not is_decode_step(args, kwargs):
            self._step_started = None  # a prefill: a new round begins
            return
        now = self._clock()
        if self._step_started is not None:
            self._step_work = now - self._step_started - self._step_spin
        extra = self.stretch * self._step_work if self._step_work is not None else 0.0
        spin(extra, self._clock)
        self._step_started, self._step_spin = now, extra
        self.steps += 1
        self.spin_total_s += extra
