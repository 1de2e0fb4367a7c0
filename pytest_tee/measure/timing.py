"""One timed round: a single ``generate`` call producing exactly N new tokens, stamped per token.

The streamer protocol of transformers gives the stamps: ``put`` is called once with the prompt and then once per
decoding step (after the token reached the host, so on CUDA each stamp is already synchronised), then ``end``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tee.measure.metrics import RoundError, RoundTimes

Clock = Callable[[], float]


class TokenClock:
    """A transformers streamer that only reads the clock: no decoding, no text, no copies kept."""

    __slots__ = ("_clock", "_prompt_seen", "ended", "stamps")

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock
        self._prompt_seen = False
        self.stamps: list[float] = []
        self.ended = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            self.stamps.append(self._clock())
        else:
            self._prompt_seen = True

    def end(self) -> None:
        self.ended = True


@dataclass(frozen=True)
class Workload:
    """The shape of one round; identical run to run so that runs can be compared."""

    prompt_tokens: int
    new_tokens: int
    batch: int


@dataclass(frozen=True)
class RoundRecord:
    times: RoundTimes
    peak_rss_mib: float | None
    peak_gpu_mib: float | None


class PeakMemory:
    """Peak RSS of this process and peak CUDA memory during one round.

    RSS: Linux resets the high-water mark (VmHWM) when "5" is written to /proc/self/clear_refs; where that is not
    allowed the round reports None rather than the lifetime peak, which would say nothing about the round.
    """

    _STATUS = Path("/proc/self/status")
    _CLEAR_REFS = Path("/proc/self/clear_refs")

    def __init__(self, device: str) -> None:
        self._cuda = device.startswith("cuda")
        self._device = device
        self._rss_resettable = True

    def reset(self) -> None:
        try:
            self._CLEAR_REFS.write_text("5")
        except OSError:
            self._rss_resettable = False
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self._device)

    def read(self) -> tuple[float | None, float | None]:
        rss = self._read_hwm_mib() if self._rss_resettable else None
        gpu = None
        if self._cuda:
            import torch

            gpu = torch.cuda.max_memory_allocated(self._device) / 2**20
        return rss, gpu

    def _read_hwm_mib(self) -> float | None:
        try:
            for line in self._STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            return None
        return None


def device_synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for queued device work; a no-op on CPU."""
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    index = torch.device(device)
    return lambda: torch.cuda.synchronize(index)


@contextmanager
def gc_paused():
    """Keep the garbage collector out of the timed region (collected just before it instead)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_kwargs(new_tokens: int) -> dict[str, Any]:
    """Exactly N greedy tokens. eos_token_id=None must be a direct argument: inside a GenerationConfig it would be
    refilled from the model's defaults, and the R1 distills default to sampling, so greedy is explicit too."""
    return {
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "do_sample": False,
        "num_beams": 1,
        "eos_token_id": None,
        "use_cache": True,
    }


def verify_token_count(output: Any, clock: TokenClock, prompt_tokens: int, workload: Workload) -> None:
    """A round that produced a different number of tokens measured a different workload: an error, not a number."""
    if len(clock.stamps) != workload.new_tokens:
        raise RoundError(
            f"generate produced {len(clock.stamps)} decoding steps, expected exactly {workload.new_tokens} "
            "(did the model stop early or ignore min_new_tokens?)"
        )
    shape = getattr(output, "shape", None)
    if shape is None:
        sequences = getattr(output, "sequences", None)
        shape = getattr(sequences, "shape", None)
    if shape is not None and tuple(shape) != (workload.batch, prompt_tokens + workload.new_tokens):
        raise RoundError(
            f"generate returned shape {tuple(shape)}, expected ({workload.batch}, "
            f"{prompt_tokens} prompt + {workload.new_tokens} new tokens)"
        )


class RoundRunner:
    """Runs rounds of one model × prompt × workload; prepare() outside the timed region, timed() inside it."""

    def __init__(
        self,
        model: Any,
        input_ids: Any,
        attention_mask: Any,
        workload: Workload,
        device: str,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.model = model
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.workload = workload
        self.prompt_tokens = int(input_ids.shape[-1])
        self._clock = clock
        self._sync = device_synchronizer(device)
        self._memory = PeakMemory(device)
        self._kwargs = generate_kwargs(workload.new_tokens)
        self._pending: TokenClock | None = None
        self._last: tuple[Any, TokenClock, float, float] | None = None
        import torch

        self._inference_mode = torch.inference_mode

    def prepare(self) -> None:
        """Before each round, untimed: collect garbage, reset memory peaks, arm a fresh streamer."""
        gc.collect()
        self._memory.reset()
        self._pending = TokenClock(self._clock)

    def timed(self) -> None:
        """The timed region: one generate call between synchronised clock readings, and nothing else."""
        streamer = self._pending
        assert streamer is not None, "prepare() must run before timed()"
        with gc_paused(), self._inference_mode():
            self._sync()
            start = self._clock()
            output = self.model.generate(
                input_ids=self.input_ids, attention_mask=self.attention_mask, streamer=streamer, **self._kwargs
            )
            self._sync()
            end = self._clock()
        self._last = (output, streamer, start, end)
        self._pending = None

    def take(self) -> RoundRecord:
        """After the timed region: verify the round just timed and read its memory peaks."""
        if self._last is None:
            raise RoundError("no round was timed")
        (output, streamer, start, end), self._last = self._last, None
        verify_token_count(output, streamer, self.prompt_tokens, self.workload)
        rss, gpu = self._memory.read()
        return RoundRecord(RoundTimes(start, tuple(streamer.stamps), end), rss, gpu)

    def run_once(self) -> RoundRecord:
        self.prepare()
        self.timed()
        return self.take()
