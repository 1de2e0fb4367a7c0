"""Prompt token ids for a workload: identical run to run, recorded by hash and count, never by text.

Three sources:

- a tokenizer and no text: a fixed built-in set of prompt texts (or the ``texts`` a conftest provides) is
  tokenized, then repeated and cut to exactly ``prompt_tokens`` ids per sequence (each row of a batch starts at a
  different place in that cycle, so the rows differ);
- a tokenizer and a ``prompt`` string: that string tokenized as is (its own token count, the tokenizer's usual
  special tokens), repeated for each row of the batch;
- no tokenizer: deterministic pseudo-random ids drawn from the ordinary text-token range of the vocabulary
  (special tokens sit at the ends of every tokenizer in the catalogue, see ``Checkpoint.text_token_range``).

``sha256`` covers the shape and the ids, and the text when there is one: two prompts with the same hash are the
same input. The text itself is never kept on the returned object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Neutral, non-confidential English prose: representative of ordinary text for the tokenizer, nothing more.
BUILTIN_TEXTS: tuple[str, ...] = (
    "The history of measurement is a history of agreement. Long before anyone could explain why a standard "
    "length or weight mattered, traders and builders learned that a shared unit made their work repeatable, "
    "and that a careful record of how a quantity was measured was worth as much as the number itself.",
    "A river carries sediment from the mountains to the sea. Where the current slows, on the inside of a bend "
    "or at the mouth of a delta, the heavier grains settle first, and over centuries the shape of the land "
    "follows the slow arithmetic of flow, load and time.",
    "When you write a function that other people will call, describe what it returns before how it works. "
    "State the units of every number, say what happens at the edges of the valid range, and keep the examples "
    "short enough that a reader can check them in their head.",
    "Bread rises because yeast ferments sugars into carbon dioxide and alcohol. The gluten network stretches "
    "around the bubbles of gas; a warmer kitchen speeds the process, a colder one slows it, and patience "
    "decides the texture as much as any recipe does.",
    "Explain step by step how to estimate the number of piano tuners in a large city: start from the "
    "population, guess the share of households with a piano, how often a piano is tuned each year, and how "
    "many instruments one tuner can service in a working day.",
    "Satellites in low orbit circle the planet in about ninety minutes. Their ground tracks shift westward "
    "with each pass as the Earth turns beneath them, which is why a single satellite can, over a few days, "
    "photograph almost every place on the surface.",
)

_HASH_DOMAIN = b"pytest-tee prompt v1\n"


class PromptError(ValueError):
    """A prompt request that cannot be met (e.g. text without a tokenizer)."""


@dataclass(frozen=True)
class Prompt:
    """Token ids for one workload; holds no text."""

    input_ids: torch.Tensor  # (batch, prompt_tokens), int64
    attention_mask: torch.Tensor  # (batch, prompt_tokens), all ones
    sha256: str
    token_count: int  # ids per sequence
    source: str  # "tokenizer" | "synthetic-ids"

    @property
    def batch(self) -> int:
        return int(self.input_ids.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.token_count,
            "batch": self.batch,
            "prompt_sha256": self.sha256,
            "prompt_source": self.source,
        }


def make_prompt(
    *,
    vocab_size: int,
    prompt_tokens: int,
    batch: int,
    tokenizer: Any = None,
    texts: Sequence[str] | None = None,
    prompt: str | None = None,
    seed: int = 0,
    token_range: tuple[int, int] | None = None,
) -> Prompt:
    """The prompt for a workload; see the module docstring for where the ids come from.

    ``token_range`` ([low, high)) limits synthetic ids; by default the first 3 and the last 3 % of the
    vocabulary are avoided, which keeps clear of BOS/EOS/pad and added special tokens in every catalogue
    tokenizer. Pass ``Checkpoint.text_token_range`` for the exact range.
    """
    _check_positive("prompt_tokens", prompt_tokens)
    _check_positive("batch", batch)
    _check_positive("vocab_size", vocab_size)
    if prompt is not None:
        if tokenizer is None:
            raise PromptError(
                "a prompt text needs a tokenizer, and none was found on disk for this model; provide one with "
                "the weights (--tee-model-path) or in the Hugging Face cache, or measure with synthetic ids "
                "(prompt_tokens=N)"
            )
        if not prompt:
            raise PromptError("the prompt text is empty")
        ids = _encode(tokenizer, prompt, special_tokens=True)
        if not ids:
            raise PromptError("the prompt text tokenized to no ids")
        rows = [ids] * batch
        return _build(rows, "tokenizer", text=prompt, vocab_size=vocab_size)
    if tokenizer is not None:
        chosen = list(texts) if texts else list(BUILTIN_TEXTS)
        if not all(isinstance(text, str) and text for text in chosen):
            raise PromptError("prompt texts must be non-empty strings")
        text = "\n\n".join(chosen)
        rows = _cycled_rows(tokenizer, text, prompt_tokens, batch)
        return _build(rows, "tokenizer", text=text, vocab_size=vocab_size)
    low, high = token_range if token_range is not None else _default_range(vocab_size)
    if not 0 <= low < high <= vocab_size:
        raise PromptError(f"token range [{low}, {high}) is not inside the vocabulary of {vocab_size} ids")
    rows = _synthetic_rows(low, high, prompt_tokens, batch, seed)
    return _build(rows, "synthetic-ids", text=None, vocab_size=vocab_size)


def prompt_sha256(input_ids: Any, text: str | None = None) -> str:
    """SHA-256 of the shape and ids (little-endian int64), then of the text when there is one."""
    import numpy as np

    array = np.ascontiguousarray(np.asarray(input_ids, dtype="<i8"))
    digest = hashlib.sha256(_HASH_DOMAIN)
    digest.update(("x".join(str(n) for n in array.shape) + "\n").encode())
    digest.update(array.tobytes())
    if text is not None:
        digest.update(b"\ntext\n")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PromptError(f"{name}={value!r}: expected a whole number of at least 1")


def _default_range(vocab_size: int) -> tuple[int, int]:
    low = min(3, vocab_size - 1)
    return low, max(low + 1, int(vocab_size * 0.97))


def _encode(tokenizer: Any, text: str, *, special_tokens: bool) -> list[int]:
    encoded = tokenizer(text, add_special_tokens=special_tokens)
    ids = encoded["input_ids"] if not isinstance(encoded, list) else encoded
    return [int(i) for i in ids]


def _cycled_rows(tokenizer: Any, text: str, prompt_tokens: int, batch: int) -> list[list[int]]:
    cycle = _encode(tokenizer, text, special_tokens=False)
    if not cycle:
        raise PromptError("the prompt texts tokenized to no ids")
    bos = getattr(tokenizer, "bos_token_id", None)
    head = [int(bos)] if bos is not None else []
    body = max(prompt_tokens - len(head), 0)
    rows = []
    for row in range(batch):
        start = (row * len(cycle)) // batch  # spread the rows' starting points over the cycle
        needed = start + body
        repeated = cycle * (needed // len(cycle) + 1)
        rows.append((head + repeated[start : start + body])[:prompt_tokens])
    return rows


def _synthetic_rows(low: int, high: int, prompt_tokens: int, batch: int, seed: int) -> list[list[int]]:
    """splitmix64 over (seed, position): stable across numpy/torch versions and platforms, unlike their RNGs."""
    import numpy as np

    count = prompt_tokens * batch
    with np.errstate(over="ignore"):
        z = np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z += np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    ids = low + (z % np.uint64(high - low)).astype(np.int64)
    return ids.reshape(batch, prompt_tokens).tolist()


def _build(rows: list[list[int]], source: str, *, text: str | None, vocab_size: int) -> Prompt:
    import torch

    input_ids = torch.tensor(rows, dtype=torch.int64)
    if int(input_ids.max()) >= vocab_size or int(input_ids.min()) < 0:
        raise PromptError(
            f"the tokenizer produced ids up to {int(input_ids.max())}, outside the model's vocabulary of "
            f"{vocab_size}: tokenizer and model do not belong together"
        )
    return Prompt(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        sha256=prompt_sha256(input_ids.numpy(), text),
        token_count=int(input_ids.shape[1]),
        source=source,
    )
