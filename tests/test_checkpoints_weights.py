"""Weights resolution and the real loading path: a local directory, a Hugging Face cache laid out on disk, or
synthetic; bad paths and `real` with nothing on disk. No network: the cache is a directory under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pytest_tee.checkpoints.catalogue import get
from pytest_tee.checkpoints.loading import ModelUnavailable, load_model
from pytest_tee.checkpoints.testing import add_to_hf_cache, save_synthetic_checkpoint
from pytest_tee.checkpoints.weights import hf_hub_cache, resolve_weights
from pytest_tee.errors import InputError

TINY = get("tiny-qwen2")
WORKLOAD = (8, 4, 1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-qwen2 checkpoint written with save_pretrained (seed 7, so it differs from a fresh synthetic one)."""
    return save_synthetic_checkpoint(TINY, tmp_path_factory.mktemp("models") / "tiny-qwen2", seed=7)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _same_weights(model: torch.nn.Module, directory: Path) -> bool:
    from safetensors.torch import load_file

    saved = load_file(str(directory / "model.safetensors"))
    state = model.state_dict()
    return all(torch.equal(state[name], tensor) for name, tensor in saved.items())


@pytest.mark.slow
def test_explicit_path_loads_real_weights_and_its_tokenizer(tiny_dir: Path, empty_cache: Path) -> None:
    loaded = load_model(
        TINY, device="cpu", dtype="float32", weights_mode="real", model_paths={TINY.id: tiny_dir}, workload=WORKLOAD
    )
    assert loaded.weights == "real"
    assert str(tiny_dir) in loaded.weights_source
    assert _same_weights(loaded.model, tiny_dir)
    assert loaded.tokenizer is not None
    assert not loaded.model.training
    described = loaded.describe()
    assert described["weights"] == "real"
    assert described["tokenizer"] is True
    json.dumps(described)


def test_auto_prefers_the_explicit_path_over_synthetic(tiny_dir: Path, empty_cache: Path) -> None:
    resolution = resolve_weights(TINY, mode="auto", model_paths={TINY.id: tiny_dir})
    assert (resolution.kind, resolution.path, resolution.tokenizer_path) == ("real", tiny_dir, tiny_dir)


def test_hf_cache_layout_loads_real_weights(tiny_dir: Path, empty_cache: Path) -> None:
    snapshot = add_to_hf_cache(tiny_dir, TINY.repo_id, empty_cache)
    assert (snapshot / "model.safetensors").is_symlink()  # laid out like the real cache: blobs + links
    loaded = load_model(TINY, device="cpu", dtype="float32", weights_mode="auto", model_paths={}, workload=WORKLOAD)
    assert loaded.weights == "real"
    assert "Hugging Face cache" in loaded.weights_source
    assert str(snapshot) in loaded.weights_source
    assert _same_weights(loaded.model, tiny_dir)
    assert loaded.tokenizer is not None


def test_hf_home_is_used_when_hf_hub_cache_is_unset(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hf_hub_cache() == tmp_path / "hf" / "hub"
    add_to_hf_cache(tiny_dir, TINY.repo_id, tmp_path / "hf" / "hub")
    assert resolve_weights(TINY, mode="real", model_paths={}).kind == "real"


def test_other_repo_ids_of_the_same_shapes_are_looked_for(tiny_dir: Path, empty_cache: Path) -> None:
    import dataclasses

    twin = dataclasses.replace(TINY, other_repo_ids=("someone/tiny-qwen2-finetune",))
    snapshot = add_to_hf_cache(tiny_dir, "someone/tiny-qwen2-finetune", empty_cache)
    resolution = resolve_weights(twin, mode="real", model_paths={})
    assert resolution.path == snapshot
    assert f"no {TINY.repo_id}" in "; ".join(resolution.looked)  # the primary repo was looked for first


def test_snapshot_at_a_pinned_revision_without_refs_is_found(tiny_dir: Path, empty_cache: Path) -> None:
    snapshot = add_to_hf_cache(tiny_dir, TINY.repo_id, empty_cache, revision="a" * 40, ref=None)
    resolution = resolve_weights(TINY, mode="real", model_paths={})
    assert resolution.path == snapshot


@pytest.mark.slow
def test_incomplete_cache_falls_back_to_synthetic_and_says_why(tiny_dir: Path, empty_cache: Path) -> None:
    config_and_tokenizer = ["config.json", "tokenizer.json", "tokenizer_config.json"]
    add_to_hf_cache(tiny_dir, TINY.repo_id, empty_cache, files=config_and_tokenizer)
    resolution = resolve_weights(TINY, mode="auto", model_paths={})
    assert resolution.kind == "synthetic"
    assert "config.json but no weights" in resolution.source
    # The cached tokenizer is still used with synthetic weights.
    assert resolution.tokenizer_path is not None
    loaded = load_model(TINY, device="cpu", dtype="float32", weights_mode="auto", model_paths={}, workload=WORKLOAD)
    assert loaded.weights == "synthetic"
    assert loaded.tokenizer is not None


def test_missing_shard_is_not_complete_weights(tmp_path: Path, empty_cache: Path) -> None:
    directory = tmp_path / "sharded"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(dict(TINY.config)))
    index = {"metadata": {}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match=r"model-00002-of-00002\.safetensors"):
        resolve_weights(TINY, mode="auto", model_paths={TINY.id: directory})


def test_synthetic_mode_ignores_weights_on_disk(tiny_dir: Path, empty_cache: Path) -> None:
    add_to_hf_cache(tiny_dir, TINY.repo_id, empty_cache)
    resolution = resolve_weights(TINY, mode="synthetic", model_paths={})
    assert resolution.kind == "synthetic"
    assert resolution.source == "synthetic (requested)"
    assert resolution.tokenizer_path is not None  # a cached tokenizer still serves the prompts


def test_real_with_nothing_on_disk_says_where_it_looked_and_how_to_fix(empty_cache: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        load_model(TINY, device="cpu", dtype="float32", weights_mode="real", model_paths={}, workload=WORKLOAD)
    message = str(info.value)
    assert str(empty_cache) in message
    assert TINY.repo_id in message
    assert f"--tee-model-path {TINY.id}=" in message
    assert "Hugging Face cache" in message


def test_model_path_that_does_not_exist(tmp_path: Path, empty_cache: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        resolve_weights(TINY, mode="auto", model_paths={TINY.id: tmp_path / "nowhere"})


def test_model_path_without_config_json(tmp_path: Path, empty_cache: Path) -> None:
    with pytest.raises(InputError, match=r"has no config\.json"):
        resolve_weights(TINY, mode="auto", model_paths={TINY.id: tmp_path})


def test_model_path_with_config_but_no_weights(tmp_path: Path, empty_cache: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(dict(TINY.config)))
    with pytest.raises(InputError, match="no weights"):
        resolve_weights(TINY, mode="real", model_paths={TINY.id: tmp_path})


@pytest.mark.slow
def test_model_path_of_a_different_model(tmp_path: Path, empty_cache: Path) -> None:
    llama_dir = save_synthetic_checkpoint(get("tiny-llama"), tmp_path / "llama", tokenizer=False)
    with pytest.raises(InputError, match="model_type 'llama' where the catalogue has 'qwen2'"):
        resolve_weights(TINY, mode="auto", model_paths={TINY.id: llama_dir})


def test_unknown_weights_mode(empty_cache: Path) -> None:
    with pytest.raises(ValueError, match="auto, real, synthetic"):
        resolve_weights(TINY, mode="fake", model_paths={})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_weights_load_onto_cuda(tiny_dir: Path, empty_cache: Path) -> None:
    loaded = load_model(
        TINY, device="cuda", dtype="bfloat16", weights_mode="real", model_paths={TINY.id: tiny_dir}, workload=WORKLOAD
    )
    assert {p.device.type for p in loaded.model.parameters()} == {"cuda"}
    assert loaded.placement["strategy"] == "single-device"
