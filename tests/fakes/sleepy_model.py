"""A stand-in model for gate tests: real wall-clock time (sleeps), exact token counts, any speed we ask for."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch


@dataclass
class SleepyConfig:
    vocab_size: int = 512
    _name_or_path: str = "sleepy"


@dataclass
class SleepyModel:
    """``step_s`` per generated token, times ``$SLEEPY_SLOWDOWN`` (so a head session can be made slower)."""

    prefill_s: float = 0.002
    step_s: float = 0.002
    config: SleepyConfig = field(default_factory=SleepyConfig)

    def generate(self, input_ids, attention_mask=None, streamer=None, max_new_tokens=1, **kwargs):
        slowdown = float(os.environ.get("SLEEPY_SLOWDOWN", "1"))
        streamer.put(input_ids)
        time.sleep(self.prefill_s)
        for _ in range(max_new_tokens):
            time.sleep(self.step_s * slowdown)
            streamer.put(torch.zeros(input_ids.shape[0], dtype=torch.long))
        streamer.end()
        return torch.zeros(input_ids.shape[0], input_ids.shape[1] + max_new_tokens, dtype=torch.long)

    def get_input_embeddings(self):
        raise NotImplementedError


SLEEPY_CONFTEST = """
from pytest_tee import LoadedModel
from tests.fakes.sleepy_model import SleepyModel

def pytest_tee_generate_model(config, checkpoint, execution_env, dtype, weights):
    return LoadedModel(checkpoint=checkpoint, model=SleepyModel(), weights="synthetic", dtype="none",
                       device="cpu", placement={"strategy": "sleepy"})
"""
