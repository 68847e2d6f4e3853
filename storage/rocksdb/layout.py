"""Key and value layout of the RocksDB backend.

Every integer in a key is fixed-width big-endian, so byte order is numeric order and a range of
keys is one bounded iterator. Topic and group names map to u32 ids (kept in ``meta``), so keys
stay fixed-width and an id is never reused. Letters below: T topic id (u32), G group id (u32),
Q queue id (u32), O offset (u64), times are epoch ms (u64).

Column families::

    meta      "format"                    -> u32 format version (FORMAT_VERSION)
              "seq/topic" | "seq/group"   -> u64 next id to hand out
              "seq/generation"            -> u64 generations below this may have been handed out
              "topic/" name               -> JSON topic config
              "group/" name               -> JSON group config

    cq        T Q O                       -> queue entry: store_ms, tag, message group, properties,
                                             only-for-group id (a dead letter sent back)
              (the consume queue: what filtering and ordering need, without the payload)
    msg       T Q O                       -> message: format, flags, store_ms, message id,
                                             [dead-letter origin], payload

    cursor    G T Q                       -> next offset never delivered | committed hint |
                                             dead-lettered count
    inflight  G T Q O                     -> visible_at | attempt | generation | delivered_ms | flags |
                                             message-group hash (0: none)
    invis     visible_at G T Q O          -> ""        (revive = one range scan up to now)
    ready     G T Q O                     -> attempts so far | generation   (expired, to redeliver)
    fwait     G T Q H O                   -> attempts so far | generation
              (FIFO groups: messages held back behind their message group's delivery in flight, and
              expired FIFO deliveries, per message-group hash H (u64) in offset order)
    timer     due_ms T id                 -> held message (queue, entry, record): a scheduled message
    ttimer    T due_ms id                 -> ""        (per-topic order, for describe)
    half      T id                        -> half message: queue, checks, next check, entry, record
    hcheck    next_check_ms T id          -> ""        (half messages by when to ask the producer)
    qidx, qrev                            -> message query indexes (storage/rocksdb/query.py)
    trace     T Q O id                    -> a trace record of the message (storage/trace_contract.py)
    fhead     G T Q H                     -> u64 lowest offset waiting in fwait for that message group
              (one key per waiting message group: reads seek straight to a group's head instead
              of walking the tombstones its earlier, delivered entries left)

The committed hint is a lower bound: no live in-flight or retry-ready entry lies below it, so
scans start there and never walk the tombstones of acknowledged messages. The real committed
offset is the first live entry at or above it, or the next offset.

One WriteBatch per state change: append = cq + msg for every message of every batch;
pop = inflight + invis + ready deletions + cursor; ack = inflight + invis deletions (+ cursor);
change invisibility = invis swap + inflight; revive = inflight + invis -> ready, or -> a
dead-letter append (+ the dead-letter topic's creation); reset = cursor + ready deletions +
inflight flags; retention = a delete_range over cq and msg per queue.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import NamedTuple

FORMAT_VERSION = 1

COLUMN_FAMILIES = ("meta", "cq", "msg", "cursor", "inflight", "invis", "ready", "fwait", "fhead",
                   "timer", "ttimer", "half", "hcheck", "qidx", "qrev",
                   "trace")

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TQ = struct.Struct(">II")
_TQO = struct.Struct(">IIQ")
_GTQ = struct.Struct(">III")
_GTQO = struct.Struct(">IIIQ")
_INVIS = struct.Struct(">QIIIQ")
_CURSOR = struct.Struct(">QQQ")
_INFLIGHT = struct.Struct(">QIQQBQ")
_GTQH = struct.Struct(">IIIQ")
_GTQHO = struct.Struct(">IIIQQ")
_READY = struct.Struct(">IQ")
_ENTRY_HEAD = struct.Struct(">QBHI")
_MSG_HEAD = struct.Struct(">BBQH")
_LEN16 = struct.Struct(">H")
_LEN32 = struct.Struct(">I")

MSG_RECORD_V1 = 1

META_FORMAT = b"format"
META_SEQ_TOPIC = b"seq/topic"
META_SEQ_GROUP = b"seq/group"
META_SEQ_GENERATION = b"seq/generation"
META_TIMERS = b"timers/"
"""+ T: u64 count of the topic's pending scheduled messages."""
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


def tqo_offset(key: bytes) -> int:
    """The offset of a T Q O key (read on every entry a pop scans: no tuple built)."""
    offset: int = _U64.unpack_from(key, 8)[0]
    return offset


def gtqo_offset(key: bytes) -> int:
    """The offset of a G T Q O key."""
    offset: int = _U64.unpack_from(key, 12)[0]
    return offset


def gtqho_offset(key: bytes) -> int:
    """The offset of a G T Q H O key."""
    offset: int = _U64.unpack_from(key, 20)[0]
    return offset


def gtqh_hash(key: bytes) -> int:
    """The message-group hash of a G T Q H key."""
    hashed: int = _U64.unpack_from(key, 12)[0]
    return hashed


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


def next_prefix(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (an exclusive upper bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        raise ValueError("prefix has no upper bound")
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


# -- values --------------------------------------------------------------------------------------


def cursor(next_offset: int, committed_hint: int, dead_lettered: int) -> bytes:
    return _CURSOR.pack(next_offset, committed_hint, dead_lettered)


def parse_cursor(value: bytes) -> tuple[int, int, int]:
    next_offset, committed_hint, dead_lettered = _CURSOR.unpack(value)
    return next_offset, committed_hint, dead_lettered


INFLIGHT_DROPPED = 1
"""Delivered before a reset of the group's position: expiry drops it instead of redelivering."""


def inflight(visible_at: int, attempt: int, generation: int, delivered_ms: int, flags: int = 0,
             group_hash: int = 0) -> bytes:
    return _INFLIGHT.pack(visible_at, attempt, generation, delivered_ms, flags, group_hash)


class Inflight(NamedTuple):
    visible_at: int
    attempt: int
    generation: int
    delivered_ms: int
    flags: int
    group_hash: int
    """Of the message's message group; 0: none."""


def parse_inflight(value: bytes) -> Inflight:
    return Inflight._make(_INFLIGHT.unpack(value))


def group_hash(message_group: str | None) -> int:
    """A stable 64-bit hash of a message group; 0 means "no message group"."""
    if message_group is None:
        return 0
    return int.from_bytes(hashlib.blake2b(message_group.encode(), digest_size=8).digest(), "big") or 1


def gtqh(group_id: int, topic_id: int, queue_id: int, hashed: int) -> bytes:
    return _GTQH.pack(group_id, topic_id, queue_id, hashed)


def gtqho(group_id: int, topic_id: int, queue_id: int, hashed: int, offset: int) -> bytes:
    return _GTQHO.pack(group_id, topic_id, queue_id, hashed, offset)


_TIME_T_ID = struct.Struct(">QIQ")
_T_TIME_ID = struct.Struct(">IQQ")
_T_ID = struct.Struct(">IQ")
_HELD_HEAD = struct.Struct(">IIQI")


def time_t_id(at_ms: int, topic_id: int, held_id: int) -> bytes:
    return _TIME_T_ID.pack(at_ms, topic_id, held_id)


def parse_time_t_id(key: bytes) -> tuple[int, int, int]:
    at_ms, topic_id, held_id = _TIME_T_ID.unpack(key)
    return at_ms, topic_id, held_id


def t_time_id(topic_id: int, at_ms: int, held_id: int) -> bytes:
    return _T_TIME_ID.pack(topic_id, at_ms, held_id)


def t_id(topic_id: int, held_id: int) -> bytes:
    return _T_ID.pack(topic_id, held_id)


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


def parse_gtqh(key: bytes) -> tuple[int, int, int, int]:
    group_id, topic_id, queue_id, hashed = _GTQH.unpack(key)
    return group_id, topic_id, queue_id, hashed


def parse_gtqho(key: bytes) -> tuple[int, int, int, int, int]:
    group_id, topic_id, queue_id, hashed, offset = _GTQHO.unpack(key)
    return group_id, topic_id, queue_id, hashed, offset


def ready(attempts: int, generation: int) -> bytes:
    return _READY.pack(attempts, generation)


class Ready(NamedTuple):
    attempts: int
    """Deliveries made so far."""
    generation: int


def parse_ready(value: bytes) -> Ready:
    return Ready._make(_READY.unpack(value))


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
