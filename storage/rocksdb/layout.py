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

The values' encodings (queue entries, message records, held messages) are in
:mod:`storage.rocksdb.records`; this module re-exports them.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from storage.rocksdb.records import MSG_RECORD_V1 as MSG_RECORD_V1
from storage.rocksdb.records import Held as Held
from storage.rocksdb.records import MessageRecord as MessageRecord
from storage.rocksdb.records import decode_entry as decode_entry
from storage.rocksdb.records import decode_held as decode_held
from storage.rocksdb.records import decode_message as decode_message
from storage.rocksdb.records import encode_entry as encode_entry
from storage.rocksdb.records import encode_held as encode_held
from storage.rocksdb.records import encode_message as encode_message
from storage.rocksdb.records import entry_only_group as entry_only_group
from storage.rocksdb.records import entry_store_ms as entry_store_ms
from storage.rocksdb.records import entry_tag as entry_tag
from storage.rocksdb.records import message_id_of as message_id_of
from storage.rocksdb.records import with_only_group as with_only_group

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


def time_t_id(at_ms: int, topic_id: int, held_id: int) -> bytes:
    return _TIME_T_ID.pack(at_ms, topic_id, held_id)


def parse_time_t_id(key: bytes) -> tuple[int, int, int]:
    at_ms, topic_id, held_id = _TIME_T_ID.unpack(key)
    return at_ms, topic_id, held_id


def t_time_id(topic_id: int, at_ms: int, held_id: int) -> bytes:
    return _T_TIME_ID.pack(topic_id, at_ms, held_id)


def t_id(topic_id: int, held_id: int) -> bytes:
    return _T_ID.pack(topic_id, held_id)


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
