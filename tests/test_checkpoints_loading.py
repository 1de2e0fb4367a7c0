"""load_model end to end with tiny checkpoints, LoadedModel.describe, and the one-model ModelCache."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.loading import LoadedModel, ModelCache, load_model
from pytest_tee.checkpoints.prompts import make_prompt


@pytest.fixture(autouse=True)
def _no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_id", ["tiny-qwen2", "tiny-llama", "tiny-deepseek-v3"])
def test_tiny_variants_generate_exactly_n_tokens_greedily(checkpoint_id: str) -> None:
    checkpoint = get(checkpoint_id)
    prompt_tokens, new_tokens, batch = 12, 6, 2
    loaded = load_model(
        checkpoint,
        device="cpu",
        dtype="float32",
        weights_mode="auto",
        model_paths={},
        workload=(prompt_tokens, new_tokens, batch),
    )
    assert loaded.weights == "synthetic"
    prompt = make_prompt(
        vocab_size=checkpoint.vocab_size,
        prompt_tokens=prompt_tokens,
        batch=batch,
        token_range=checkpoint.text_token_range,
    )
    kwargs = {
        "attention_mask": prompt.attention_mask,
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "do_sample": False,
        "num_beams": 1,
        "eos_token_id": None,
    }
    first = loaded.model.generate(prompt.input_ids, **kwargs)
    again = loaded.model.generate(prompt.input_ids, **kwargs)
    assert first.shape == (batch, prompt_tokens + new_tokens)
    assert torch.equal(first[:, :prompt_tokens], prompt.input_ids)
    assert torch.equal(first, again)  # greedy: the same tokens every time


@pytest.mark.slow
def test_auto_dtype_is_decided_and_explained() -> None:
    loaded = load_model(
        get("tiny-qwen2"), device="cpu", dtype="auto", weights_mode="synthetic", model_paths={}, workload=(4, 2, 1)
    )
    assert loaded.dtype in ("bfloat16", "float32")
    assert loaded.dtype_reason.startswith("auto: CPU")
    assert next(loaded.model.parameters()).dtype == getattr(torch, loaded.dtype)


@pytest.mark.slow
def test_describe_is_plain_data_for_stored_results() -> None:
    loaded = load_model(
        get("tiny-deepseek-v3"),
        device="cpu",
        dtype="bfloat16",
        weights_mode="synthetic",
        model_paths={},
        workload=(4, 2, 1),
        dtype_reason="requested",
    )
    described = loaded.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["checkpoint"]["id"] == "tiny-deepseek-v3"
    assert described["weights"] == "synthetic"
    assert described["weights_source"] == "synthetic (requested)"
    assert described["dtype"] == "bfloat16"
    assert described["dtype_reason"] == "requested"
    assert described["placement"]["strategy"] == "single-device"
    assert described["placement"]["memory_estimate"]["weights"] == get("tiny-deepseek-v3").weight_bytes("bfloat16")
    assert described["load_seconds"] >= 0


def test_a_hook_can_build_a_loaded_model_with_few_fields() -> None:
    loaded = LoadedModel(checkpoint=get("tiny-llama"), model=object(), weights="real", dtype="q8_0")
    described = loaded.describe()
    assert described["weights"] == "real"
    assert described["placement"] == {}
    assert described["tokenizer"] is False


class _Big:
    """Stands in for a model; collecting it is what ModelCache must do before building the next."""


def test_model_cache_reuses_the_same_key() -> None:
    cache = ModelCache()
    calls = []
    first = cache.get("a", lambda: calls.append(1) or _Big())
    assert cache.get("a", lambda: calls.append(2) or _Big()) is first
    assert calls == [1]
    assert cache.key == "a"


@pytest.mark.slow
def test_model_cache_releases_the_previous_model_before_building_the_next() -> None:
    cache = ModelCache()
    previous = weakref.ref(cache.get("a", _Big))
    gc.collect()
    alive_while_building = []

    def build_next() -> _Big:
        alive_while_building.append(previous() is not None)
        return _Big()

    cache.get("b", build_next)
    assert alive_while_building == [False]
    assert cache.key == "b"


@pytest.mark.slow
def test_model_cache_clear() -> None:
    cache = ModelCache()
    held = weakref.ref(cache.get("a", _Big))
    cache.clear()
    assert held() is None
    assert cache.key is None
    cache.clear()  # clearing an empty cache is fine
