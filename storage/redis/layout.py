"""Where the Redis Cluster store keeps what, and how values are written.

Keys of one queue share one hash tag, so every script that changes a queue runs on one node,
atomically; the catalog (topics, groups, id counters, leases) has a hash tag of its own::

    NS:{NS}:catalog       hash   "t:<topic>" -> topic config (JSON), "g:<group>" -> group config
    NS:{NS}:seq           hash   topic / group -> last id handed out (never reused)
    NS:{NS}:lease:<name>  string holder, with a TTL (background jobs held by one node at a time)

    one queue of one topic, Q = NS:{NS:<topic id>:<queue id>}:
    Q meta        hash   base (first stored offset), end (next offset), last (last store time),
                         gen (last delivery generation), hid (last timer / half message id)
    Q e           hash   offset -> entry  "<store ms>|<only group id or ''>|<JSON [tag, group, props]>"
    Q b           hash   offset -> body   "<message id>\\n<JSON origin or ''>\\n<payload>"
    Q grp         set    group ids with a position in this queue
    Q p:<gid>     hash   next (next offset never delivered), dl (dead-lettered, ever)
    Q f:<gid>     hash   offset -> in flight "<visible at>|<attempt>|<generation>|<delivered ms>|<dropped>"
    Q r:<gid>     hash   offset -> attempts so far: waiting redelivery (groups that are not FIFO)
    Q w:<gid>     hash   offset -> attempts so far: FIFO groups, held back or waiting redelivery
    Q inv         zset   "<gid>:<offset>" by visible_at: what revive looks at
    Q tm          zset   held id by due time: scheduled messages
    Q hx          zset   held id by next check time: transactional half messages
    Q hd          hash   held id -> "<created ms>|<len(entry)>|<entry JSON><body>"
    Q hc          hash   held id -> checks so far (half messages)
    Q xi, xk, xt  zset   message query indexes by id, key, tag (storage/redis/query_lua.py)
    Q tr          hash   offset -> the message's trace records, each u32-length-prefixed

Entries are what the scripts read to decide (store time, the group a resent dead letter is
addressed to, tag and message group); bodies are opaque to them. Timer and transaction ids are
``held id << 16 | queue id`` so that a recall or a commit, which names only the topic, finds its
queue. Generations count per queue (a receipt names its queue, so that is where they must differ).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from storage.model import DeadLetter, QueueEntry, StoredMessage

QUEUE_BITS = 16
"""Low bits of a timer or transaction id that hold its queue id."""


class Keys:
    """Key names of one store namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        cat = f"{namespace}:{{{namespace}}}:"
        self.catalog = cat + "catalog"
        self.seq = cat + "seq"
        self.lease_prefix = cat + "lease:"

    def queue(self, topic_id: int, queue_id: int) -> str:
        """The queue's meta key: every script on a queue gets it as KEYS[1] and derives the others
        from it (same hash tag, same node)."""
        return f"{self.ns}:{{{self.ns}:{topic_id}:{queue_id}}}:meta"

    def queue_key(self, topic_id: int, queue_id: int, suffix: str) -> str:
        return self.queue(topic_id, queue_id)[:-4] + suffix

    def lease(self, name: str) -> str:
        return self.lease_prefix + name

    def channel(self, name: str) -> str:
        return f"{self.ns}:bus:{name}"


def held_id(number: int, queue_id: int) -> int:
    return number << QUEUE_BITS | queue_id


def split_held_id(held: int) -> tuple[int, int]:
    """(number within its queue, queue id)."""
    return held >> QUEUE_BITS, held & ((1 << QUEUE_BITS) - 1)


def encode_entry(tag: str | None, group: str | None, properties: Mapping[str, str]) -> bytes:
    """The part of an entry the caller knows; the script puts store time and addressee before it."""
    return json.dumps([tag, group, dict(properties)], separators=(",", ":")).encode()


def decode_entry(offset: int, raw: bytes) -> tuple[QueueEntry, int | None]:
    """The queue entry, and the group it is addressed to (None: every group)."""
    store_ms, only, rest = raw.split(b"|", 2)
    tag, group, properties = json.loads(rest)
    return QueueEntry(offset, int(store_ms), tag, group, properties), (int(only) if only else None)


def encode_body(message_id: str, payload: bytes, origin: DeadLetter | None = None) -> bytes:
    head = b"" if origin is None else json.dumps([origin.topic, origin.message_id, origin.attempts]).encode()
    return message_id.encode() + b"\n" + head + b"\n" + payload


def decode_body(raw: bytes) -> tuple[str, bytes, DeadLetter | None]:
    message_id, head, payload = raw.split(b"\n", 2)
    origin = None
    if head:
        topic, origin_id, attempts = json.loads(head)
        origin = DeadLetter(topic, origin_id, attempts)
    return message_id.decode(), payload, origin


def stored_message(topic: str, queue_id: int, offset: int, entry: bytes, body: bytes) -> StoredMessage:
    message_id, payload, origin = decode_body(body)
    return StoredMessage(topic, queue_id, offset, int(entry.split(b"|", 1)[0]), message_id, payload, origin)


def split_held(raw: bytes) -> tuple[int, bytes, bytes]:
    """(created ms, entry JSON, body) of a timer or half message."""
    created, length, rest = raw.split(b"|", 2)
    size = int(length)
    return int(created), rest[:size], rest[size:]
