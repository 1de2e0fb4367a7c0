"""Reading fixed-layout binary evidence without ever leaking an IndexError or struct.error to the user."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pytest_tee.errors import InputError


class EvidenceFormatError(InputError, ValueError):
    """A blob that is not the evidence it is read as: the message names the field, its offset and the length found.

    An ``InputError``, so the ``pytest-tee`` command turns it into one line and exit code 2.
    """


# (field name as the specification spells it, attribute name, offset, size)
Layout = Sequence[tuple[str, str, int, int]]


class BlobReader:
    """Bounds-checked little-endian reads from one blob, with errors that say what was being read where."""

    def __init__(self, blob: bytes | bytearray | memoryview, what: str) -> None:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise EvidenceFormatError(f"{what}: expected bytes, got {type(blob).__name__}")
        self.blob = bytes(blob)
        self.what = what

    def __len__(self) -> int:
        return len(self.blob)

    def error(self, message: str) -> EvidenceFormatError:
        return EvidenceFormatError(f"{self.what}: {message}")

    def take(self, field: str, offset: int, size: int) -> bytes:
        end = offset + size
        if end > len(self.blob):
            available = max(0, len(self.blob) - offset)
            raise self.error(
                f"{field} at offset {offset} (0x{offset:X}) needs {size} bytes, but the blob is "
                f"{len(self.blob)} bytes long ({available} available there): truncated or not this kind of evidence"
            )
        return self.blob[offset:end]

    def uint(self, field: str, offset: int, size: int) -> int:
        return int.from_bytes(self.take(field, offset, size), "little")

    def expect_size(self, size: int) -> None:
        found = len(self.blob)
        if found < size:
            raise self.error(
                f"is {found} bytes long, expected exactly {size}: truncated at offset {found} (0x{found:X}), "
                "in the reserved bytes after the last field"
            )
        if found > size:
            raise self.error(
                f"is {found} bytes long, expected exactly {size}: {found - size} extra bytes from offset {size} "
                f"(0x{size:X})"
            )

    def fields(self, layout: Layout, base: int = 0) -> dict[str, bytes]:
        return {attr: self.take(name, base + offset, size) for name, attr, offset, size in layout}


def write_fields(buffer: bytearray, layout: Layout, values: dict[str, bytes], base: int = 0) -> None:
    """The inverse of ``BlobReader.fields``: used to build synthetic evidence and to re-encode parsed records."""
    for name, attr, offset, size in layout:
        value = values[attr]
        if len(value) != size:
            raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
        buffer[base + offset : base + offset + size] = value


def le_bytes(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def bits_set(value: int) -> list[int]:
    return [bit for bit in range(value.bit_length()) if value >> bit & 1]
