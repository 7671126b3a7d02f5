"""A minimal reader for the protocol-buffers binary wire format (no compiled ``.proto`` needed).

A serialised message is a sequence of fields; each field starts with a varint *key*
``(field_number << 3) | wire_type``. Wire types used by MediaPipe's metadata:

| wire type | meaning | payload |
|---|---|---|
| 0 | VARINT | base-128 varint (ints, enums, bools) |
| 1 | I64 | 8 little-endian bytes (double, fixed64) |
| 2 | LEN | varint length + bytes (sub-message, string, *packed* repeated numbers) |
| 5 | I32 | 4 little-endian bytes (float, fixed32) |

Repeated numeric fields may be written one element per key (unpacked) or as a single LEN blob
(packed); :func:`repeated_floats` and :func:`repeated_varints` accept both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VARINT, I64, LEN, I32 = 0, 1, 2, 5


@dataclass(frozen=True)
class WireField:
    """One decoded field: its number, wire type and raw value (int for VARINT, bytes otherwise)."""

    number: int
    wire_type: int
    value: int | bytes


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint starting at ``pos``; return ``(value, next_pos)``."""
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError(f"truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"varint longer than 10 bytes ending at byte {pos}")


def iter_fields(data: bytes) -> list[WireField]:
    """Split one serialised message into its top-level fields, in file order."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type in (I64, I32):
            width = 8 if wire_type == I64 else 4
            value, pos = data[pos : pos + width], pos + width
        elif wire_type == LEN:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire_type} (field {number}) at byte {pos}")
        if pos > len(data):
            raise ValueError(f"field {number} runs past the end of the message ({len(data)} bytes)")
        fields.append(WireField(number, wire_type, value))
    return fields


def first_varint(fields: list[WireField], number: int, default: int = 0) -> int:
    """Value of the first VARINT field ``number`` (protobuf default when absent)."""
    for field in fields:
        if field.number == number and field.wire_type == VARINT:
            return int(field.value)
    return default


def sub_messages(fields: list[WireField], number: int) -> list[bytes]:
    """Payloads of every LEN field ``number`` (a repeated or singular sub-message)."""
    return [f.value for f in fields if f.number == number and f.wire_type == LEN]


def repeated_floats(fields: list[WireField], number: int) -> list[float]:
    """All float32 values of field ``number``, packed (LEN) or unpacked (I32), in order."""
    values: list[float] = []
    for field in fields:
        if field.number != number:
            continue
        if field.wire_type == I32:
            values.append(struct.unpack("<f", field.value)[0])
        elif field.wire_type == LEN:
            values.extend(struct.unpack(f"<{len(field.value) // 4}f", field.value))
    return values


def repeated_varints(fields: list[WireField], number: int) -> list[int]:
    """All varint values of field ``number``, packed (LEN) or unpacked (VARINT), in order."""
    values: list[int] = []
    for field in fields:
        if field.number != number:
            continue
        if field.wire_type == VARINT:
            values.append(int(field.value))
        elif field.wire_type == LEN:
            pos = 0
            while pos < len(field.value):
                value, pos = read_varint(field.value, pos)
                values.append(value)
    return values
