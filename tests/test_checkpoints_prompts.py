"""Prompts: exact length, deterministic, hashed by ids (and text), never holding the text."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.prompts import BUILTIN_TEXTS, PromptError, make_prompt, prompt_sha256
from pytest_tee.checkpoints.testing import toy_tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return toy_tokenizer(1024)


@pytest.mark.parametrize(("prompt_tokens", "batch"), [(1, 1), (16, 1), (128, 4), (3000, 2)])
def test_synthetic_ids_have_the_exact_shape_and_stay_in_range(prompt_tokens: int, batch: int) -> None:
    qwen = get("r1-distill-qwen-1.5b")
    prompt = make_prompt(
        vocab_size=qwen.vocab_size, prompt_tokens=prompt_tokens, batch=batch, token_range=qwen.text_token_range
    )
    assert prompt.input_ids.shape == (batch, prompt_tokens)
    assert prompt.input_ids.dtype == torch.int64
    assert torch.equal(prompt.attention_mask, torch.ones_like(prompt.input_ids))
    assert prompt.token_count == prompt_tokens
    assert prompt.batch == batch
    assert prompt.source == "synthetic-ids"
    assert int(prompt.input_ids.min()) >= 0
    assert int(prompt.input_ids.max()) < 151643  # never a Qwen special token (151643 and up)


def test_synthetic_ids_default_range_avoids_both_ends_of_the_vocabulary() -> None:
    prompt = make_prompt(vocab_size=1000, prompt_tokens=4000, batch=1)
    assert int(prompt.input_ids.min()) >= 3
    assert int(prompt.input_ids.max()) < 970


def test_synthetic_ids_are_deterministic_and_seeded() -> None:
    first = make_prompt(vocab_size=1000, prompt_tokens=64, batch=2)
    again = make_prompt(vocab_size=1000, prompt_tokens=64, batch=2)
    other = make_prompt(vocab_size=1000, prompt_tokens=64, batch=2, seed=1)
    assert torch.equal(first.input_ids, again.input_ids)
    assert first.sha256 == again.sha256
    assert not torch.equal(first.input_ids, other.input_ids)
    assert first.sha256 != other.sha256
    assert not torch.equal(first.input_ids[0], first.input_ids[1])  # rows differ
    # Pinned: ids and hash are part of the stored workload, so they must not drift between versions or platforms.
    pinned = make_prompt(vocab_size=1000, prompt_tokens=4, batch=1)
    assert pinned.input_ids.tolist() == [[364, 847, 409, 950]]
    assert pinned.sha256 == "ed075c3a55dc8126adc3c91f79b4e29a654070c52250cdcaecea503ee3ce8f99"
    assert first.input_ids[0, :4].tolist() == [364, 847, 409, 950]  # a longer prompt extends, never reshuffles


def test_hash_covers_shape_ids_and_text() -> None:
    ids = [[5, 6, 7, 8]]
    base = prompt_sha256(ids)
    assert prompt_sha256([[5, 6, 7, 9]]) != base
    assert prompt_sha256([[5, 6], [7, 8]]) != base
    assert prompt_sha256(ids, "some text") != base
    assert prompt_sha256(ids, "some text") != prompt_sha256(ids, "other text")
    assert prompt_sha256(torch.tensor(ids)) == base


@pytest.mark.parametrize("prompt_tokens", [1, 2, 37, 500])
def test_tokenizer_prompt_is_cut_or_repeated_to_exactly_prompt_tokens(tokenizer, prompt_tokens: int) -> None:
    prompt = make_prompt(vocab_size=1024, prompt_tokens=prompt_tokens, batch=3, tokenizer=tokenizer)
    assert prompt.input_ids.shape == (3, prompt_tokens)
    assert prompt.source == "tokenizer"
    assert (prompt.input_ids[:, 0] == tokenizer.bos_token_id).all()
    if prompt_tokens > 1:
        assert not torch.equal(prompt.input_ids[0], prompt.input_ids[1])
    again = make_prompt(vocab_size=1024, prompt_tokens=prompt_tokens, batch=3, tokenizer=tokenizer)
    assert torch.equal(prompt.input_ids, again.input_ids)
    assert prompt.sha256 == again.sha256


def test_tokenizer_prompt_starts_with_the_builtin_text(tokenizer) -> None:
    prompt = make_prompt(vocab_size=1024, prompt_tokens=6, batch=1, tokenizer=tokenizer)
    first_words = tokenizer(BUILTIN_TEXTS[0], add_special_tokens=False)["input_ids"][:5]
    assert prompt.input_ids[0, 1:].tolist() == first_words


def test_conftest_texts_replace_the_builtin_ones(tokenizer) -> None:
    builtin = make_prompt(vocab_size=1024, prompt_tokens=32, batch=1, tokenizer=tokenizer)
    custom = make_prompt(vocab_size=1024, prompt_tokens=32, batch=1, tokenizer=tokenizer, texts=["a river carries"])
    assert custom.input_ids.shape == (1, 32)
    assert custom.sha256 != builtin.sha256


def test_user_prompt_keeps_its_own_length_and_is_not_stored(tokenizer) -> None:
    secret = "The river carries sediment to the sea"
    prompt = make_prompt(vocab_size=1024, prompt_tokens=128, batch=2, tokenizer=tokenizer, prompt=secret)
    expected = tokenizer(secret)["input_ids"]
    assert prompt.token_count == len(expected)
    assert prompt.input_ids[0].tolist() == expected
    assert torch.equal(prompt.input_ids[0], prompt.input_ids[1])
    assert prompt.sha256 == prompt_sha256(prompt.input_ids, secret)
    # No field holds the text, and neither repr nor the stored summary mentions it.
    assert all(
        not isinstance(getattr(prompt, f.name), str) or f.name in ("sha256", "source")
        for f in dataclasses.fields(prompt)
    )
    assert "river" not in repr(prompt)
    assert "river" not in str(prompt.to_dict())
    other = make_prompt(vocab_size=1024, prompt_tokens=128, batch=2, tokenizer=tokenizer, prompt=secret + " now")
    assert other.sha256 != prompt.sha256


def test_prompt_text_without_a_tokenizer_is_refused() -> None:
    with pytest.raises(PromptError, match="needs a tokenizer"):
        make_prompt(vocab_size=1024, prompt_tokens=8, batch=1, prompt="hello")


def test_tokenizer_ids_outside_the_vocabulary_are_refused(tokenizer) -> None:
    with pytest.raises(PromptError, match="do not belong together"):
        make_prompt(vocab_size=10, prompt_tokens=32, batch=1, tokenizer=tokenizer)


@pytest.mark.parametrize(("name", "value"), [("prompt_tokens", 0), ("batch", -1), ("prompt_tokens", 1.5)])
def test_bad_sizes(name: str, value: object) -> None:
    kwargs = {"vocab_size": 100, "prompt_tokens": 8, "batch": 1, name: value}
    with pytest.raises(PromptError, match=name):
        make_prompt(**kwargs)


def test_token_range_outside_the_vocabulary() -> None:
    with pytest.raises(PromptError, match="not inside the vocabulary"):
        make_prompt(vocab_size=100, prompt_tokens=8, batch=1, token_range=(50, 200))
