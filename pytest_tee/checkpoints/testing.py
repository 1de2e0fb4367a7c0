"""Helpers for exercising the real-weights path without a network: a model directory and a Hugging Face cache.

pytest-tee's own tests use these, and so can a project's CI that wants to check its ``--tee-model-path`` or
cache setup with a tiny checkpoint::

    from pytest_tee.checkpoints import catalogue, testing

    tiny = catalogue.get("tiny-qwen2")
    directory = testing.save_synthetic_checkpoint(tiny, tmp_path / "tiny-qwen2")
    testing.add_to_hf_cache(directory, tiny.repo_id, tmp_path / "hub")   # then HF_HUB_CACHE=tmp_path/hub
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint


def toy_tokenizer(vocab_size: int, texts: Iterable[str] | None = None) -> Any:
    """A word-level fast tokenizer built in memory (no download): ``<unk>``, ``<s>``, ``</s>``, then words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from pytest_tee.checkpoints.prompts import BUILTIN_TEXTS

    specials = ["<unk>", "<s>", "</s>"]
    words: dict[str, int] = {token: index for index, token in enumerate(specials)}
    splitter = pre_tokenizers.Whitespace()
    for text in texts if texts is not None else BUILTIN_TEXTS:
        for word, _span in splitter.pre_tokenize_str(text):
            if word not in words and len(words) < vocab_size:
                words[word] = len(words)
    backend = Tokenizer(models.WordLevel(vocab=words, unk_token="<unk>"))
    backend.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def save_synthetic_checkpoint(
    checkpoint: Checkpoint,
    directory: Path,
    *,
    dtype: str = "float32",
    seed: int = 0,
    tokenizer: bool = True,
) -> Path:
    """Write a synthetic-weights model of ``checkpoint`` with ``save_pretrained`` (and a toy tokenizer)."""
    from pytest_tee.checkpoints.synthetic import synthetic_model

    directory = Path(directory)
    model = synthetic_model(checkpoint, dtype=dtype, seed=seed)
    model.save_pretrained(directory)
    if tokenizer:
        toy_tokenizer(checkpoint.vocab_size).save_pretrained(directory)
    return directory


def add_to_hf_cache(
    directory: Path,
    repo_id: str,
    cache: Path,
    *,
    revision: str | None = None,
    ref: str | None = "main",
    files: Iterable[str] | None = None,
) -> Path:
    """Lay out ``directory``'s files as the Hugging Face hub cache does; return the snapshot directory.

    ``cache/models--ORG--NAME/blobs/<sha256>`` holds the content, ``snapshots/<revision>/<file>`` links to it
    and ``refs/<ref>`` names the revision (``ref=None``: a snapshot fetched at a pinned revision, no ref).
    ``files`` limits which files are copied (to build an incomplete cache).
    """
    from huggingface_hub.file_download import repo_folder_name

    directory, cache = Path(directory), Path(cache)
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    names = sorted(p.name for p in directory.iterdir() if p.is_file()) if files is None else list(files)
    revision = revision or hashlib.sha1("\n".join(names).encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name in names:
        source = directory / name
        blob = repo / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(source, blob)
        link = snapshot / name
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, snapshot))
        except OSError:  # no symlinks (some Windows setups): huggingface_hub then copies too
            shutil.copyfile(blob, link)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return snapshot
