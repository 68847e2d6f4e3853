"""Key and value layout of the RocksDB backend.

Every integer in a key is fixed-width big-endian, so byte order is numeric order and a range of
keys is one bounded iterator. Topic and group names map to u32 ids (kept in ``meta``), so keys
stay fixed-width and an id is never reused. Letters below: T topic id (u32), G group id (u32),
Q queue id (u32), O offset (u64), times are epoch ms (u64).

Column families::

    meta      "format"                    -> u32 format version (FORMAT_VERSION)
              "seq/topic" | "seq/group"   -> u64 next id to hand out
              "topic/" name               -> JSON topic config
              "group/" name               -> JSON group config

    cq        T Q O                       -> queue entry: store_ms, tag, message group, properties
              (the consume queue: what filtering and ordering need, without the payload)
    msg       T Q O                       -> message: format byte, store_ms, message id, payload
    msgid     len(id) u16 | id | T        -> Q O       (lookup by message id)

    cursor    G T Q                       -> next offset never delivered | committed offset
    inflight  G T Q O                     -> visible_at | attempt | generation
    invis     visible_at G T Q O          -> ""        (revive = one range scan up to now)
    ready     G T Q O                     -> attempts so far | generation   (expired, to redeliver)

One WriteBatch per state change: append = cq + msg + msgid for every message of every batch;
pop = inflight + invis + ready deletions + cursor; ack = inflight + invis deletions (+ cursor);
change invisibility = invis swap + inflight; revive = inflight + invis -> ready.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

FORMAT_VERSION = 1

COLUMN_FAMILIES = ("meta", "cq", "msg", "msgid", "cursor", "inflight", "invis", "ready")

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TQ = struct.Struct(">II")
_TQO = struct.Struct(">IIQ")
_GTQ = struct.Struct(">III")
_GTQO = struct.Struct(">IIIQ")
_INVIS = struct.Struct(">QIIIQ")
_QO = struct.Struct(">IQ")
_CURSOR = struct.Struct(">QQ")
_INFLIGHT = struct.Struct(">QII")
_READY = struct.Struct(">II")
_ENTRY_HEAD = struct.Struct(">QBH")
_MSG_HEAD = struct.Struct(">BQH")
_LEN16 = struct.Struct(">H")
_LEN32 = struct.Struct(">I")

MSG_RECORD_V1 = 1

META_FORMAT = b"format"
META_SEQ_TOPIC = b"seq/topic"
META_SEQ_GROUP = b"seq/group"
META_TOPIC = b"topic/"
META_GROUP = b"group/"

U32_MAX = 0xFFFFFFFF


def u32(value: int) -> bytes:
    return _U32.pack(value)


def u64(value: int) -> bytes:
    return _U64.pack(value)


def read_u32(data: bytes) -> int:
    value: int = _U32.unpack(data)[0]
    return value


def read_u64(data: bytes) -> int:
    value: int = _U64.unpack(data)[0]
    return value


# -- keys ----------------------------------------------------------------------------------------


def tq(topic_id: int, queue_id: int) -> bytes:
    return _TQ.pack(topic_id, queue_id)


def tqo(topic_id: int, queue_id: int, offset: int) -> bytes:
    return _TQO.pack(topic_id, queue_id, offset)


def parse_tqo(key: bytes) -> tuple[int, int, int]:
    topic_id, queue_id, offset = _TQO.unpack(key)
    return topic_id, queue_id, offset


def gtq(group_id: int, topic_id: int, queue_id: int) -> bytes:
    return _GTQ.pack(group_id, topic_id, queue_id)


def gtqo(group_id: int, topic_id: int, queue_id: int, offset: int) -> bytes:
    return _GTQO.pack(group_id, topic_id, queue_id, offset)


def parse_gtqo(key: bytes) -> tuple[int, int, int, int]:
    group_id, topic_id, queue_id, offset = _GTQO.unpack(key)
    return group_id, topic_id, queue_id, offset


def invis(visible_at: int, group_id: int, topic_id: int, queue_id: int, offset: int) -> bytes:
    return _INVIS.pack(visible_at, group_id, topic_id, queue_id, offset)


def parse_invis(key: bytes) -> tuple[int, int, int, int, int]:
    visible_at, group_id, topic_id, queue_id, offset = _INVIS.unpack(key)
    return visible_at, group_id, topic_id, queue_id, offset


def msgid(message_id: str, topic_id: int) -> bytes:
    return msgid_prefix(message_id) + _U32.pack(topic_id)


def msgid_prefix(message_id: str) -> bytes:
    raw = message_id.encode()
    return _LEN16.pack(len(raw)) + raw


def next_prefix(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (an exclusive upper bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        raise ValueError("prefix has no upper bound")
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


# -- values --------------------------------------------------------------------------------------


def queue_position(queue_id: int, offset: int) -> bytes:
    return _QO.pack(queue_id, offset)


def parse_queue_position(value: bytes) -> tuple[int, int]:
    queue_id, offset = _QO.unpack(value)
    return queue_id, offset


def cursor(next_offset: int, committed: int) -> bytes:
    return _CURSOR.pack(next_offset, committed)


def parse_cursor(value: bytes) -> tuple[int, int]:
    next_offset, committed = _CURSOR.unpack(value)
    return next_offset, committed


def inflight(visible_at: int, attempt: int, generation: int) -> bytes:
    return _INFLIGHT.pack(visible_at, attempt, generation)


def parse_inflight(value: bytes) -> tuple[int, int, int]:
    visible_at, attempt, generation = _INFLIGHT.unpack(value)
    return visible_at, attempt, generation


def ready(attempts: int, generation: int) -> bytes:
    return _READY.pack(attempts, generation)


def parse_ready(value: bytes) -> tuple[int, int]:
    attempts, generation = _READY.unpack(value)
    return attempts, generation


_HAS_TAG = 1
_HAS_GROUP = 2


def _put_str16(out: list[bytes], text: str) -> None:
    raw = text.encode()
    out.append(_LEN16.pack(len(raw)))
    out.append(raw)


def encode_entry(store_ms: int, tag: str | None, message_group: str | None, properties: Mapping[str, str]) -> bytes:
    """Queue entry: store_ms u64 | flags u8 | property count u16 | [tag] [group] (key value)*.

    Strings are u16-length-prefixed UTF-8, except property values (u32, they may be long)."""
    flags = (_HAS_TAG if tag is not None else 0) | (_HAS_GROUP if message_group is not None else 0)
    out = [_ENTRY_HEAD.pack(store_ms, flags, len(properties))]
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
    store_ms, flags, count = _ENTRY_HEAD.unpack_from(value)
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


def encode_message(store_ms: int, message_id: str, payload: bytes) -> bytes:
    """Message record: format u8 | store_ms u64 | id length u16 | id | payload."""
    raw_id = message_id.encode()
    return _MSG_HEAD.pack(MSG_RECORD_V1, store_ms, len(raw_id)) + raw_id + payload


def decode_message(value: bytes) -> tuple[int, str, bytes]:
    version, store_ms, id_length = _MSG_HEAD.unpack_from(value)
    if version != MSG_RECORD_V1:
        raise ValueError(f"unknown message record version {version}")
    start = _MSG_HEAD.size
    message_id = value[start:start + id_length].decode()
    return store_ms, message_id, value[start + id_length:]
