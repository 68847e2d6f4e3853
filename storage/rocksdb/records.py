"""Value layout of the RocksDB backend: queue entries, message records, held messages.

The encodings of the values stored under the keys of :mod:`storage.rocksdb.layout` (``cq``,
``msg``, ``timer``, ``half``), which re-exports every public name here. Lengths and integers are
fixed-width big-endian, as in the keys.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import NamedTuple

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct(">QBHI")
_MSG_HEAD = struct.Struct(">BBQH")
_LEN16 = struct.Struct(">H")
_LEN32 = struct.Struct(">I")
_HELD_HEAD = struct.Struct(">IIQI")

MSG_RECORD_V1 = 1


def encode_held(queue_id: int, checks: int, next_check_ms: int, entry: bytes, record: bytes) -> bytes:
    """A message held back (timer or half message): queue u32 | checks u32 | next check u64 |
    entry length u32 | queue entry | message record."""
    return _HELD_HEAD.pack(queue_id, checks, next_check_ms, len(entry)) + entry + record


class Held(NamedTuple):
    """A timer or a half message as stored."""

    queue_id: int
    checks: int
    next_check_ms: int
    entry: bytes
    """Its queue entry, encoded."""
    record: bytes
    """Its message record, encoded."""


def decode_held(value: bytes) -> Held:
    queue_id, checks, next_check_ms, length = _HELD_HEAD.unpack_from(value)
    start = _HELD_HEAD.size
    return Held(queue_id, checks, next_check_ms, value[start:start + length], value[start + length:])


_HAS_TAG = 1
_HAS_GROUP = 2


def _put_str16(out: list[bytes], text: str) -> None:
    raw = text.encode()
    out.append(_LEN16.pack(len(raw)))
    out.append(raw)


def encode_entry(store_ms: int, tag: str | None, message_group: str | None, properties: Mapping[str, str],
                 only_group: int = 0) -> bytes:
    """Queue entry: store_ms u64 | flags u8 | property count u16 | only-for-group id u32 (0: all)
    | [tag] [group] (key value)*.

    Strings are u16-length-prefixed UTF-8, except property values (u32, they may be long)."""
    flags = (_HAS_TAG if tag is not None else 0) | (_HAS_GROUP if message_group is not None else 0)
    out = [_ENTRY_HEAD.pack(store_ms, flags, len(properties), only_group)]
    if tag is not None:
        _put_str16(out, tag)
    if message_group is not None:
        _put_str16(out, message_group)
    for key, value in properties.items():
        _put_str16(out, key)
        raw = value.encode()
        out.append(_LEN32.pack(len(raw)))
        out.append(raw)
    return b"".join(out)


def decode_entry(value: bytes) -> tuple[int, str | None, str | None, dict[str, str]]:
    store_ms, flags, count, _ = _ENTRY_HEAD.unpack_from(value)
    pos = _ENTRY_HEAD.size

    def str16() -> str:
        nonlocal pos
        (length,) = _LEN16.unpack_from(value, pos)
        pos += 2
        text = value[pos:pos + length].decode()
        pos += length
        return text

    tag = str16() if flags & _HAS_TAG else None
    group = str16() if flags & _HAS_GROUP else None
    properties: dict[str, str] = {}
    for _ in range(count):
        key = str16()
        (length,) = _LEN32.unpack_from(value, pos)
        pos += 4
        properties[key] = value[pos:pos + length].decode()
        pos += length
    return store_ms, tag, group, properties


def entry_store_ms(value: bytes) -> int:
    store_ms: int = _U64.unpack_from(value)[0]
    return store_ms


def entry_tag(value: bytes) -> bytes | None:
    """The encoded tag of a queue entry, without decoding the rest; None if it has none."""
    if not value[8] & _HAS_TAG:
        return None
    (length,) = _LEN16.unpack_from(value, _ENTRY_HEAD.size)
    return value[_ENTRY_HEAD.size + 2:_ENTRY_HEAD.size + 2 + length]


def entry_only_group(value: bytes) -> int:
    only_group: int = _ENTRY_HEAD.unpack_from(value)[3]
    return only_group


def with_only_group(value: bytes, store_ms: int, only_group: int) -> bytes:
    """A copy of an encoded entry with a new store time and only-for-group id."""
    _, flags, count, _ = _ENTRY_HEAD.unpack_from(value)
    return _ENTRY_HEAD.pack(store_ms, flags, count, only_group) + value[_ENTRY_HEAD.size:]


_DEAD_LETTER = 1
_U32_SIZE = 4


def encode_message(store_ms: int, message_id: str, payload: bytes,
                   dead_letter: tuple[str, str, int] | None = None) -> bytes:
    """Message record: format u8 | flags u8 | store_ms u64 | id length u16 | id
    | [origin topic, origin message id (u16-prefixed), attempts u32] | payload."""
    raw_id = message_id.encode()
    out = [_MSG_HEAD.pack(MSG_RECORD_V1, _DEAD_LETTER if dead_letter else 0, store_ms, len(raw_id)), raw_id]
    if dead_letter is not None:
        topic, origin_id, attempts = dead_letter
        _put_str16(out, topic)
        _put_str16(out, origin_id)
        out.append(_U32.pack(attempts))
    out.append(payload)
    return b"".join(out)


class MessageRecord(NamedTuple):
    store_ms: int
    message_id: str
    payload: bytes
    dead_letter: tuple[str, str, int] | None
    """(origin topic, origin message id, attempts) of a dead letter."""


def decode_message(value: bytes) -> MessageRecord:
    version, flags, store_ms, id_length = _MSG_HEAD.unpack_from(value)
    if version != MSG_RECORD_V1:
        raise ValueError(f"unknown message record version {version}")
    pos = _MSG_HEAD.size
    message_id = value[pos:pos + id_length].decode()
    pos += id_length
    dead_letter = None
    if flags & _DEAD_LETTER:
        strings = []
        for _ in range(2):
            (length,) = _LEN16.unpack_from(value, pos)
            strings.append(value[pos + 2:pos + 2 + length].decode())
            pos += 2 + length
        (attempts,) = _U32.unpack_from(value, pos)
        pos += _U32_SIZE
        dead_letter = (strings[0], strings[1], attempts)
    return MessageRecord(store_ms, message_id, value[pos:], dead_letter)


def message_id_of(value: bytes) -> str:
    """The message id of a record, without decoding the rest."""
    _, _, _, id_length = _MSG_HEAD.unpack_from(value)
    return value[_MSG_HEAD.size:_MSG_HEAD.size + id_length].decode()
