"""Where a checkpoint's weights come from: a local directory, the Hugging Face cache (offline), or synthetic.

Order, each step recorded on the result: the directory given with ``--tee-model-path ID=PATH``; the Hugging Face
cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ``~/.cache/huggingface/hub``; read with huggingface_hub's
cache helpers, which never touch the network); synthetic weights of the same shapes when the mode allows it
(``auto``, ``synthetic``). ``real`` with nothing on disk raises :class:`ModelUnavailable` saying where it looked
and how to provide weights.

A tokenizer is taken from the weights' directory when it has one, else from the cache; synthetic weights use a
cached tokenizer too when there is one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tee.errors import InputError

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint

WEIGHTS_MODES = ("auto", "real", "synthetic")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
# Fields that must match the catalogue for real weights to be labelled with its id.
SHAPE_FIELDS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "moe_intermediate_size",
    "n_routed_experts",
    "kv_lora_rank",
    "q_lora_rank",
)


class ModelUnavailable(Exception):
    """This model cannot be used here (no weights, not enough memory); the message says why. Tests skip on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WeightsResolution:
    kind: str  # "real" | "synthetic"
    path: Path | None  # directory with config.json and weights (real only)
    tokenizer_path: Path | None
    source: str  # one line for results: where the weights came from
    looked: tuple[str, ...] = field(default=())  # every place checked and what was found there


def hf_hub_cache(environ: Mapping[str, str] | None = None) -> Path:
    """The hub cache directory as huggingface_hub computes it, read from the environment now (not at import)."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def resolve_weights(
    checkpoint: Checkpoint,
    *,
    mode: str,
    model_paths: Mapping[str, Path],
    environ: Mapping[str, str] | None = None,
) -> WeightsResolution:
    """Where this checkpoint's weights (and tokenizer) come from; see the module docstring."""
    if mode not in WEIGHTS_MODES:
        raise ValueError(f"weights mode {mode!r} is not one of {', '.join(WEIGHTS_MODES)}")
    looked: list[str] = []
    explicit = model_paths.get(checkpoint.id)
    explicit_dir = Path(explicit).expanduser() if explicit is not None else None
    cache = hf_hub_cache(environ)

    if explicit_dir is not None:
        check_model_dir(checkpoint, explicit_dir)
        looked.append(f"--tee-model-path {checkpoint.id}={explicit_dir}: config and weights found")
        if mode != "synthetic":
            tokenizer = explicit_dir if _has_tokenizer(explicit_dir) else _cached_tokenizer(checkpoint, cache, looked)
            return WeightsResolution("real", explicit_dir, tokenizer, f"local directory {explicit_dir}", tuple(looked))
    else:
        looked.append(f"no --tee-model-path for {checkpoint.id}")

    if mode != "synthetic":
        snapshot = find_cached_weights(checkpoint, cache, looked)
        if snapshot is not None:
            tokenizer = snapshot if _has_tokenizer(snapshot) else find_cached_tokenizer(checkpoint, cache)
            source = f"Hugging Face cache {snapshot}"
            return WeightsResolution("real", snapshot, tokenizer, source, tuple(looked))

    if mode == "real":
        raise ModelUnavailable(_nothing_on_disk(checkpoint, looked))

    tokenizer = explicit_dir if explicit_dir is not None and _has_tokenizer(explicit_dir) else None
    if tokenizer is None:
        tokenizer = _cached_tokenizer(checkpoint, cache, looked)
    why = "requested" if mode == "synthetic" else "no local weights found: " + "; ".join(looked)
    return WeightsResolution("synthetic", None, tokenizer, f"synthetic ({why})", tuple(looked))


def check_model_dir(checkpoint: Checkpoint, path: Path) -> None:
    """InputError unless ``path`` holds a config.json matching the catalogue's shapes and complete weights."""
    if not path.is_dir():
        raise InputError(f"{checkpoint.id}: model path {path} is not a directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError(f"{checkpoint.id}: {path} has no config.json (expected a Hugging Face model directory)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{checkpoint.id}: {config_file} is not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"{checkpoint.id}: {config_file} does not hold a JSON object")
    mismatches = _shape_mismatches(checkpoint, config)
    if mismatches:
        raise InputError(
            f"{checkpoint.id}: {config_file} describes a different model than the catalogue entry "
            f"({'; '.join(mismatches)}); give the directory of {checkpoint.repo_id}"
        )
    missing = missing_weight_files(path)
    if missing:
        raise InputError(f"{checkpoint.id}: {path} has config.json but {missing}")


def missing_weight_files(path: Path) -> str | None:
    """None when ``path`` has complete weights; else what is missing, in words."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
                return f"its {index_name} is unreadable"
            absent = sorted(shard for shard in shards if not (path / shard).is_file())
            if absent:
                return f"shards named in {index_name} are missing: {', '.join(absent[:3])}"
            return None
    if (path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file():
        return None
    return "no weights (model.safetensors, model.safetensors.index.json with its shards, or pytorch_model.bin)"


def find_cached_weights(checkpoint: Checkpoint, cache: Path, looked: list[str] | None = None) -> Path | None:
    """The cache snapshot directory (of any of the checkpoint's repo ids) with config.json and complete weights."""
    looked = [] if looked is None else looked
    for repo_id in checkpoint.repo_ids:
        snapshots = _cached_snapshots(repo_id, cache)
        if not snapshots:
            looked.append(f"Hugging Face cache {cache}: no {repo_id}")
            continue
        for snapshot in snapshots:
            if not (snapshot / "config.json").is_file():
                looked.append(f"Hugging Face cache {snapshot}: no config.json")
                continue
            missing = missing_weight_files(snapshot)
            if missing:
                looked.append(f"Hugging Face cache {snapshot}: config.json but {missing}")
                continue
            try:
                check_model_dir(checkpoint, snapshot)
            except InputError as exc:
                looked.append(f"Hugging Face cache {snapshot}: {exc}")
                continue
            return snapshot
    return None


def find_cached_tokenizer(checkpoint: Checkpoint, cache: Path) -> Path | None:
    for repo_id in checkpoint.repo_ids:
        for snapshot in _cached_snapshots(repo_id, cache):
            if _has_tokenizer(snapshot):
                return snapshot
    return None


# ---------------------------------------------------------------------------------------------------------------


def _cached_snapshots(repo_id: str, cache: Path) -> list[Path]:
    """Snapshot directories for ``repo_id``: the one ``refs/main`` points to first, then the others, newest first.

    ``try_to_load_from_cache`` resolves ``refs/main`` exactly as huggingface_hub does; a snapshot fetched at a
    pinned revision has no ``refs/main``, so the other snapshot directories are listed too.
    """
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.file_download import repo_folder_name

    found: list[Path] = []
    located = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache))
    if isinstance(located, str):
        found.append(Path(located).parent)
    snapshots_dir = cache / repo_folder_name(repo_id=repo_id, repo_type="model") / "snapshots"
    if snapshots_dir.is_dir():
        others = [p for p in snapshots_dir.iterdir() if p.is_dir() and p not in found]
        found.extend(sorted(others, key=lambda p: p.stat().st_mtime, reverse=True))
    return found


def _cached_tokenizer(checkpoint: Checkpoint, cache: Path, looked: list[str]) -> Path | None:
    path = find_cached_tokenizer(checkpoint, cache)
    looked.append(f"tokenizer: {path}" if path else f"tokenizer: none for {checkpoint.repo_id} in {cache}")
    return path


def _has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in TOKENIZER_FILES)


def _shape_mismatches(checkpoint: Checkpoint, config: Mapping[str, Any]) -> list[str]:
    expected = checkpoint.config
    return [
        f"{key} {config.get(key)!r} where the catalogue has {expected.get(key)!r}"
        for key in SHAPE_FIELDS
        if key in expected and key in config and config.get(key) != expected.get(key)
    ]


def _nothing_on_disk(checkpoint: Checkpoint, looked: list[str]) -> str:
    return (
        f"{checkpoint.id}: --tee-weights=real but no weights on disk ({'; '.join(looked)}). Provide them with "
        f"--tee-model-path {checkpoint.id}=/path/to/{checkpoint.repo_id.split('/')[-1]} (a directory with config.json "
        f"and the weights), or pre-populate the Hugging Face cache on a machine with network access "
        f"(hf download {checkpoint.repo_id}) and copy it here; or use --tee-weights=auto for "
        f"synthetic weights of the same shapes"
    )
