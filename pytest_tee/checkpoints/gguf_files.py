"""Reading GGUF files before llama.cpp does: is it whole, is it this checkpoint, how many bytes do its tensors hold.

llama.cpp reports a bad file as a generic "failed to load model" on stderr; checking the header here first turns a
truncated download, a corrupt file or the wrong model into a one-line error naming the file. The header is read
with the ``gguf`` package (memory-mapped: a 10 GB file costs milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tee.checkpoints.catalogue import Checkpoint

# catalogue family -> llama.cpp architecture name in general.architecture
GGUF_ARCHITECTURES = {"qwen2": "qwen2", "llama": "llama", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2"}

# GGML tensor types (gguf.GGMLQuantizationType) -> the --tee-quant name of a file whose big matrices use them.
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 7: "Q8_0", 15: "Q4_K_M", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}


class GGUFError(ValueError):
    """A GGUF file that cannot be measured; the message names the file and what is wrong."""


@dataclass(frozen=True)
class GGUFInfo:
    path: Path
    architecture: str
    file_type: str | None  # from general.file_type, as a --tee-quant name when known
    name: str
    tensor_bytes: int  # all tensor data
    decode_bytes: int  # what one decode step reads: every tensor but the input embedding (one row of it)
    tensor_types: Mapping[str, int] = field(default_factory=dict)  # GGML type name -> tensors of that type
    shape: Mapping[str, int] = field(default_factory=dict)  # hidden size, layers, heads, vocabulary

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "architecture": self.architecture,
            "file_type": self.file_type,
            "tensor_bytes": self.tensor_bytes,
            "decode_bytes": self.decode_bytes,
            "tensor_types": dict(self.tensor_types),
        }


def read_gguf(path: Path) -> GGUFInfo:
    """Header, tensor table and sizes of a GGUF file; GGUFError naming the file when it is not a whole GGUF."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GGUFError(f"{path}: cannot be read ({exc.strerror})") from None
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise GGUFError(f"{path}: not a GGUF file (starts with {magic!r}, expected b'GGUF'); is it corrupt?")
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:  # the reader raises ValueError, IndexError, struct/numpy errors on damaged headers
        raise GGUFError(f"{path}: corrupt or truncated GGUF header ({type(exc).__name__}: {exc})") from None
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise GGUFError(f"{path}: truncated: tensor data runs to byte {end:,} but the file has {size:,} bytes")
    architecture = str(_field_value(reader, "general.architecture") or "")
    wanted = ["general.name", "general.file_type", *(f"{architecture}.{suffix}" for suffix in _SHAPE_KEYS.values())]
    fields = {name: _field_value(reader, name) for name in wanted}
    if not architecture:
        raise GGUFError(f"{path}: no general.architecture in the GGUF header; is it a model file?")
    types: dict[str, int] = {}
    total = embedding = 0
    for tensor in reader.tensors:
        total += int(tensor.n_bytes)
        types[tensor.tensor_type.name] = types.get(tensor.tensor_type.name, 0) + 1
        if tensor.name == "token_embd.weight":
            embedding = int(tensor.n_bytes)
    has_output = any(t.name == "output.weight" for t in reader.tensors)
    ftype = fields.get("general.file_type")
    return GGUFInfo(
        path=path,
        architecture=architecture,
        file_type=_FILE_TYPES.get(int(ftype)) if isinstance(ftype, int) else None,
        name=str(fields.get("general.name", "")),
        tensor_bytes=total,
        # Tied embeddings (no output.weight): the output projection reads the whole embedding every step.
        decode_bytes=total - embedding if has_output else total,
        tensor_types=types,
        shape={
            key: int(value)
            for key, suffix in _SHAPE_KEYS.items()
            if isinstance(value := fields.get(f"{architecture}.{suffix}"), int)
        },
    )


_SHAPE_KEYS = {
    "hidden_size": "embedding_length",
    "num_hidden_layers": "block_count",
    "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv",
    "intermediate_size": "feed_forward_length",
}


def check_matches(info: GGUFInfo, checkpoint: Checkpoint) -> None:
    """GGUFError when the file is another architecture or other shapes than the checkpoint it stands for."""
    expected = GGUF_ARCHITECTURES.get(checkpoint.family)
    if expected is not None and info.architecture != expected:
        raise GGUFError(
            f"{info.path}: architecture {info.architecture!r} does not match {checkpoint.id} "
            f"({checkpoint.title or checkpoint.repo_id}, GGUF architecture {expected!r})"
        )
    wrong = [
        f"{key} {info.shape[key]} (expected {checkpoint.config[key]})"
        for key in _SHAPE_KEYS
        if key in info.shape and key in checkpoint.config and int(checkpoint.config[key]) != info.shape[key]
    ]
    if wrong:
        raise GGUFError(f"{info.path}: shapes do not match {checkpoint.id}: " + ", ".join(wrong))


def find_gguf(path: Path, quant: str) -> Path | None:
    """The GGUF of ``quant`` at ``path``: the file itself, or the one file in a folder whose name says ``quant``."""
    if path.is_file():
        return path
    token = quant.upper().replace("_", "")
    matches = sorted(p for p in path.glob("*.gguf") if token in p.name.upper().replace("_", "").replace("-", ""))
    if len(matches) > 1:
        raise GGUFError(
            f"{path}: several GGUF files for {quant}: {', '.join(p.name for p in matches)}; "
            "give the file itself with --tee-model-path"
        )
    return matches[0] if matches else None


def _field_value(reader: Any, name: str) -> Any:
    """A scalar header value (int, float or str), or None when absent or not a scalar."""
    field_ = reader.fields.get(name)
    if field_ is None:
        return None
    try:
        value = field_.contents()
    except Exception:  # a damaged or unusual field: treated as absent
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str)) else None
