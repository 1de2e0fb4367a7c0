"""A model with transformers' generate/streamer protocol whose time is a fake clock: exact, instant timings."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FakeClock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeConfig:
    vocab_size: int = 1000
    _name_or_path: str = "fake/model"


@dataclass
class FakeGenerator:
    """prefill_s per prompt, then step_s per new token; ``steps`` caps the tokens it produces (early EOS)."""

    clock: FakeClock
    prefill_s: float = 0.5
    step_s: float = 0.1
    steps: int | None = None
    config: FakeConfig = field(default_factory=FakeConfig)
    calls: list[dict] = field(default_factory=list)

    def generate(self, input_ids, attention_mask=None, streamer=None, **kwargs):
        self.calls.append(kwargs)
        new = kwargs["max_new_tokens"] if self.steps is None else self.steps
        streamer.put(input_ids)
        self.clock.advance(self.prefill_s)
        for _ in range(new):
            streamer.put(torch.zeros(input_ids.shape[0], dtype=torch.long))
            self.clock.advance(self.step_s)
        streamer.end()
        return torch.zeros(input_ids.shape[0], input_ids.shape[1] + new, dtype=torch.long)

    def parameters(self):
        return iter([torch.zeros(3)])
