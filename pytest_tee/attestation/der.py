"""Just enough DER to read (and, for simulations, write) the vendor extensions that ``cryptography`` leaves opaque.

Intel's SGX extension (OID 1.2.840.113741.1.13.1) in a PCK certificate and AMD's per-field VCEK extensions
(1.3.6.1.4.1.3704.1.*) are plain SEQUENCE / OID / INTEGER / OCTET STRING / ENUMERATED trees.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
ENUMERATED = 0x0A
BOOLEAN = 0x01
IA5STRING = 0x16


class DerError(ValueError):
    """Bytes that are not the DER structure they are read as."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    def children(self) -> list[Tlv]:
        if self.tag != SEQUENCE:
            raise DerError(f"expected a SEQUENCE, found tag 0x{self.tag:02x}")
        return read_all(self.value)

    def as_int(self) -> int:
        if self.tag not in (INTEGER, ENUMERATED):
            raise DerError(f"expected an INTEGER, found tag 0x{self.tag:02x}")
        return int.from_bytes(self.value, "big", signed=True)

    def as_oid(self) -> str:
        if self.tag != OID:
            raise DerError(f"expected an OBJECT IDENTIFIER, found tag 0x{self.tag:02x}")
        return decode_oid(self.value)


def read_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """The TLV at ``offset`` and the offset just after it."""
    if offset + 2 > len(data):
        raise DerError(f"truncated DER at offset {offset}")
    tag, first = data[offset], data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError(f"bad DER length at offset {offset + 1}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise DerError(f"DER value at offset {offset} needs {length} bytes, {len(data) - pos} left")
    return Tlv(tag, data[pos : pos + length]), pos + length


def read_all(data: bytes) -> list[Tlv]:
    items, pos = [], 0
    while pos < len(data):
        item, pos = read_one(data, pos)
        items.append(item)
    return items


def decode_oid(body: bytes) -> str:
    if not body:
        raise DerError("empty OBJECT IDENTIFIER")
    arcs, value = [], 0
    for byte in body:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


# -- writing (simulated certificates only) ------------------------------------------------------------------------
def encode(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        return bytes([tag, length]) + value
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + value


def encode_oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | arc & 0x7F)
            arc >>= 7
        body.extend(reversed(chunk))
    return encode(OID, bytes(body))


def encode_int(value: int, tag: int = INTEGER) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)
    return encode(tag, value.to_bytes(size, "big", signed=True))


def encode_seq(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))
