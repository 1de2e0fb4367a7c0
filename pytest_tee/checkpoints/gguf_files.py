"""Reading GGUF files before llama.cpp does: is it whole, is it this checkpoint, how many bytes do its tensors hold.

llama.cpp reports a bad file as a generic "failed to load model" on stderr; checking the header here first turns a
truncated download, a corrupt file or the wrong model into a one-line error naming the file.

The header is parsed here, reading only what is needed (scalars, tensor table) and stepping over arrays: the
``gguf`` package's reader builds a numpy view of every one of the 152k vocabulary strings of a Qwen2 file, which
took 7 s of the 8 s a cached 1.5B load cost. Type sizes come from the ``gguf`` package's table.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

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
    # what one decode step reads: every tensor but the input embedding (one row of it); of an MoE's expert
    # stacks, only the expert_used_count experts one token is routed to
    decode_bytes: int
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
        with open(path, "rb") as handle:
            header = read_header(handle)
    except OSError as exc:
        raise GGUFError(f"{path}: cannot be read ({exc.strerror})") from None
    except _Damaged as exc:
        raise GGUFError(f"{path}: {exc}") from None
    end = max((t.offset + t.n_bytes for t in header.tensors), default=0)
    if end > size:
        raise GGUFError(f"{path}: truncated: tensor data runs to byte {end:,} but the file has {size:,} bytes")
    fields = header.fields
    architecture = str(fields.get("general.architecture") or "")
    if not architecture:
        raise GGUFError(f"{path}: no general.architecture in the GGUF header; is it a model file?")
    types: dict[str, int] = {}
    total = embedding = idle_experts = 0
    experts, used = fields.get(f"{architecture}.expert_count"), fields.get(f"{architecture}.expert_used_count")
    for tensor in header.tensors:
        total += tensor.n_bytes
        types[tensor.type_name] = types.get(tensor.type_name, 0) + 1
        if tensor.name == "token_embd.weight":
            embedding = tensor.n_bytes
        if "_exps." in tensor.name and isinstance(experts, int) and isinstance(used, int) and 0 < used < experts:
            # A stack of routed experts (n_expert equal slices): one token's decode step reads expert_used_count.
            idle_experts += tensor.n_bytes - tensor.n_bytes // experts * used
    has_output = any(t.name == "output.weight" for t in header.tensors)
    ftype = fields.get("general.file_type")
    shape = {key: fields.get(f"{architecture}.{suffix}") for key, suffix in _SHAPE_KEYS.items()}
    return GGUFInfo(
        path=path,
        architecture=architecture,
        file_type=_FILE_TYPES.get(ftype) if isinstance(ftype, int) else None,
        name=str(fields.get("general.name", "")),
        tensor_bytes=total,
        # Tied embeddings (no output.weight): the output projection reads the whole embedding every step.
        decode_bytes=(total - embedding if has_output else total) - idle_experts,
        tensor_types=types,
        shape={key: value for key, value in shape.items() if isinstance(value, int) and not isinstance(value, bool)},
    )


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]  # GGUF order: the row length (ne[0]) first
    type_id: int
    type_name: str
    offset: int  # absolute, in the file
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: Mapping[str, int | float | str | bool]  # scalar values only; arrays are stepped over
    tensors: tuple[TensorEntry, ...]
    data_start: int


class _Damaged(ValueError):
    """Raised while parsing; read_gguf adds the file name."""


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 40  # far beyond any real header: a count this large is a damaged file, not a big model


def read_header(handle: BinaryIO) -> GGUFHeader:
    """The GGUF header at the start of ``handle``: version, scalar metadata, tensor table, where data starts."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    reader = _Reader(handle)
    magic = reader.take(4)
    if magic != b"GGUF":
        raise _Damaged(f"not a GGUF file (starts with {magic!r}, expected b'GGUF'); is it corrupt?")
    version = reader.scalar("<I")
    if version not in (2, 3):
        raise _Damaged(f"GGUF version {version} is not one llama.cpp reads (2 or 3); corrupt or too new?")
    n_tensors, n_fields = reader.count(), reader.count()
    fields: dict[str, int | float | str | bool] = {}
    for _ in range(n_fields):
        key = reader.string()
        kind = reader.scalar("<I")
        if kind == _ARRAY:
            reader.skip_array()
        else:
            fields[key] = reader.value(kind)
    tensors = []
    for _ in range(n_tensors):
        name = reader.string()
        dims = reader.scalar("<I")
        if not 1 <= dims <= 4:
            raise _Damaged(f"corrupt or truncated GGUF header (tensor {name!r} has {dims} dimensions)")
        shape = tuple(reader.count() for _ in range(dims))
        type_id, offset = reader.scalar("<I"), reader.count()
        try:
            ggml_type = GGMLQuantizationType(type_id)
            block, block_bytes = GGML_QUANT_SIZES[ggml_type]
        except (ValueError, KeyError):
            raise _Damaged(f"tensor {name!r} has GGML type {type_id}, unknown to this gguf package") from None
        elements = 1
        for extent in shape:
            elements *= extent
        tensors.append(TensorEntry(name, shape, type_id, ggml_type.name, offset, elements // block * block_bytes))
    alignment = fields.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        raise _Damaged(f"general.alignment is {alignment!r}, not a positive integer")
    data_start = -(-reader.position // alignment) * alignment
    placed = tuple(
        TensorEntry(t.name, t.shape, t.type_id, t.type_name, data_start + t.offset, t.n_bytes) for t in tensors
    )
    return GGUFHeader(version, fields, placed, data_start)


class _Reader:
    """Little-endian GGUF primitives over a buffered file, counting the bytes consumed."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._size = os.fstat(handle.fileno()).st_size
        self.position = 0

    def _advance(self, n: int) -> None:
        # Checked before reading: a damaged length must not make us allocate it.
        if self.position + n > self._size:
            raise _Damaged("corrupt or truncated GGUF header (ends inside the metadata)")
        self.position += n

    def take(self, n: int) -> bytes:
        self._advance(n)
        return self._handle.read(n)

    def skip(self, n: int) -> None:
        self._advance(n)
        self._handle.seek(n, os.SEEK_CUR)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self) -> int:
        value = int(self.scalar("<Q"))
        if value > _MAX_COUNT:
            raise _Damaged(f"corrupt or truncated GGUF header (a length of {value:,})")
        return value

    def string(self) -> str:
        return self.take(self.count()).decode("utf-8", "replace")

    def value(self, kind: int) -> int | float | str | bool:
        if kind == _STRING:
            return self.string()
        if kind not in _SCALARS:
            raise _Damaged(f"corrupt or truncated GGUF header (value type {kind})")
        return self.scalar(_SCALARS[kind])

    def skip_array(self) -> None:
        kind, length = self.scalar("<I"), self.count()
        if kind == _STRING:
            for _ in range(length):
                self.skip(self.count())
        elif kind in _SCALARS:
            self.skip(length * struct.calcsize(_SCALARS[kind]))
        elif kind == _ARRAY:
            for _ in range(length):
                self.skip_array()
        else:
            raise _Damaged(f"corrupt or truncated GGUF header (array of value type {kind})")


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
    # deepseek2 files store MLA as MQA (head_count_kv 1) since llama.cpp split kv_b into k_b/v_b; older
    # conversions store num_key_value_heads: either is the same checkpoint.
    keys = [key for key in _SHAPE_KEYS if not (expected == "deepseek2" and key == "num_key_value_heads")]
    wrong = [
        f"{key} {info.shape[key]} (expected {checkpoint.config[key]})"
        for key in keys
        if key in info.shape and key in checkpoint.config and int(checkpoint.config[key]) != info.shape[key]
    ]
    if wrong:
        raise GGUFError(f"{info.path}: shapes do not match {checkpoint.id}: " + ", ".join(wrong))


def find_gguf(path: Path, quant: str) -> Path | None:
    """The GGUF of ``quant`` at ``path``: the file itself, or the one file in a folder whose name says ``quant``."""
    if path.is_file():
        return path
    matches = sorted(p for p in path.glob("*.gguf") if names_quant(p.name, quant) and not _later_split_part(p.name))
    if len(matches) > 1:
        raise GGUFError(
            f"{path}: several GGUF files for {quant}: {', '.join(p.name for p in matches)}; "
            "give the file itself with --tee-model-path"
        )
    return matches[0] if matches else None


def names_quant(file_name: str, quant: str) -> bool:
    """Does a GGUF file name say ``quant``? As a whole word: ``Q4_K_M`` is not ``Q4_K_S``, ``F16`` is not ``BF16``."""
    stem = re.sub(r"[-.\s]", "_", file_name.upper().removesuffix(".GGUF"))
    return re.search(rf"(?:^|_){re.escape(quant.upper())}(?:_|$)", stem) is not None


def _later_split_part(file_name: str) -> bool:
    """Part 2+ of a split GGUF (``…-00002-of-00003.gguf``): llama.cpp is given the first part and finds the rest."""
    part = re.search(r"-(\d{5})-of-\d{5}\.gguf$", file_name, re.IGNORECASE)
    return part is not None and int(part.group(1)) != 1


def find_cached_gguf(checkpoint: Checkpoint, quant: str, cache: Path, looked: list[str] | None = None) -> Path | None:
    """A GGUF of this checkpoint in ``quant`` already in the Hugging Face hub cache; nothing is downloaded.

    GGUF conversions live in other repositories than the checkpoint's own, named after it with a ``-GGUF`` suffix
    (``bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF``, ``unsloth/…``, ``lmstudio-community/…``): every cached
    model repository so named is searched, the snapshot ``refs/main`` points to first, then the others newest
    first. Each place looked and what was found there is appended to ``looked``.
    """
    wanted = {f"{repo_id.split('/')[-1].lower()}-gguf" for repo_id in checkpoint.repo_ids}
    repositories = sorted(p for p in cache.glob("models--*") if p.name.split("--")[-1].lower() in wanted)
    if not repositories and looked is not None:
        looked.append(f"Hugging Face cache {cache}: no {' or '.join(sorted(wanted))} repository")
    for repository in repositories:
        for snapshot in _snapshots(repository):
            found = [
                p
                for p in sorted(snapshot.rglob("*.gguf"))
                if names_quant(p.name, quant) and not _later_split_part(p.name)
            ]
            if found:
                return found[0]
            if looked is not None:
                looked.append(f"Hugging Face cache {snapshot}: no {quant} GGUF")
    return None


def _snapshots(repository: Path) -> list[Path]:
    folder = repository / "snapshots"
    if not folder.is_dir():
        return []
    ref = repository / "refs" / "main"
    main = folder / ref.read_text().strip() if ref.is_file() else None
    others = sorted((p for p in folder.iterdir() if p.is_dir() and p != main), key=lambda p: -p.stat().st_mtime)
    return ([main] if main is not None and main.is_dir() else []) + others
