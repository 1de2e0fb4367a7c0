"""Measure a model served by llama.cpp's HTTP server with pytest-tee's fixtures, storage and gate.

pytest-tee times ``model.generate(...)`` and stamps the clock each time the model calls ``streamer.put``. Any
engine that streams tokens can therefore be measured through a small adapter: this conftest returns one from the
``pytest_tee_generate_model`` hook when ``LLAMA_SERVER_URL`` is set (start the server inside the same trust
domain, e.g. ``llama-server -m DeepSeek-R1-Distill-Qwen-1.5B-Q8_0.gguf --port 8080``), and leaves loading to
pytest-tee otherwise.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from pytest_tee import LoadedModel

# (prompt token ids, number of new tokens) -> yields once per generated token
TokenStream = Callable[[Sequence[int], int], Iterator[object]]


def llama_server_stream(url: str) -> TokenStream:
    """Greedy completion of exactly ``max_tokens`` tokens from llama.cpp's ``/completion`` endpoint."""

    def stream(prompt_ids: Sequence[int], max_tokens: int) -> Iterator[object]:
        body = {
            "prompt": list(prompt_ids),
            "n_predict": max_tokens,
            "ignore_eos": True,  # exactly max_tokens, like min_new_tokens = max_new_tokens
            "temperature": 0,
            "cache_prompt": False,  # else every round after the first skips prefill
            "stream": True,
        }
        request = urllib.request.Request(
            f"{url.rstrip('/')}/completion",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            for line in response:  # server-sent events: one "data: {...}" line per generated token
                if line.startswith(b"data: ") and not json.loads(line[6:]).get("stop"):
                    yield line

    return stream


@dataclass
class VocabConfig:
    vocab_size: int  # pytest-tee draws synthetic prompt token ids below this


class StreamingAdapter:
    """The part of transformers' ``generate`` that pytest-tee uses, over any token stream (batch 1)."""

    def __init__(self, stream: TokenStream, vocab_size: int) -> None:
        self.stream = stream
        self.config = VocabConfig(vocab_size)

    def generate(self, input_ids, attention_mask=None, streamer=None, max_new_tokens=1, **greedy_settings):
        if input_ids.shape[0] != 1:
            raise ValueError("this adapter sends one sequence per request: use batch=1")
        streamer.put(input_ids)  # the prompt, once
        produced = 0
        for _ in self.stream(input_ids[0].tolist(), max_new_tokens):
            streamer.put(None)  # the clock is read here: one call per generated token
            produced += 1
        streamer.end()
        # pytest-tee checks the shape: a server that produced another count fails the round, not the numbers.
        return torch.zeros((1, input_ids.shape[1] + produced), dtype=torch.long)


def pytest_tee_generate_model(config, checkpoint, execution_env, dtype, weights):
    url = os.environ.get("LLAMA_SERVER_URL")
    if not url or execution_env.device != "cpu":
        return None  # the built-in transformers loader
    return LoadedModel(
        checkpoint=checkpoint,
        model=StreamingAdapter(llama_server_stream(url), vocab_size=checkpoint.vocab_size),
        weights="real",
        dtype=os.environ.get("LLAMA_SERVER_QUANT", "gguf"),
        device="cpu",
        placement={"strategy": "llama.cpp server", "url": url},
        weights_source="served by llama.cpp",
    )
