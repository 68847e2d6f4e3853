"""The RocksDB store's query index keys, written in the same WriteBatch as the message.

    qidx   T Q kind len16 value O   -> ""   kind 1 message id, 2 key, 3 tag
    qrev   T Q O                    -> the message's qidx suffixes (kind len16 value)*

:func:`index_message` is called by :meth:`storage.rocksdb.write.Write.append`, the one place a
message enters a queue; :func:`drop_indexes` by retention, in the write that removes the messages.
Reads are in :mod:`storage.rocksdb.query`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from storage.query_contract import KEYS_PROPERTY, QueryBy, entry_keys
from storage.rocksdb import layout as L

Put = Callable[[str, bytes, bytes], None]
Delete = Callable[[str, bytes], None]

KIND = {QueryBy.MESSAGE_ID: 1, QueryBy.KEY: 2, QueryBy.TAG: 3}
_SUFFIX = struct.Struct(">BH")
_KEYS_MARK = KEYS_PROPERTY.encode()


def suffix(kind: int, value: str) -> bytes:
    raw = value.encode()[:0xFFFF]
    return _SUFFIX.pack(kind, len(raw)) + raw


def index_message(put: Put, topic_id: int, queue_id: int, offset: int, message_id: str, entry: bytes) -> None:
    """Put the index keys of a message being appended (in the append's own batch)."""
    suffixes = [suffix(1, message_id)]
    tag = L.entry_tag(entry)
    if tag is not None:
        suffixes.append(suffix(3, tag.decode()))
    if _KEYS_MARK in entry:  # decode the entry only when it carries keys
        suffixes.extend(suffix(2, key) for key in entry_keys(L.decode_entry(entry)[3]))
    head = L.tq(topic_id, queue_id)
    tail = L.u64(offset)
    for part in suffixes:
        put("qidx", head + part + tail, b"")
    put("qrev", L.tqo(topic_id, queue_id, offset), b"".join(suffixes))


def drop_indexes(reverse: Iterable[tuple[bytes, bytes]], delete: Delete, topic_id: int, queue_id: int) -> None:
    """Delete the qidx keys named by ``reverse`` (the qrev entries of the messages retention
    removes); the caller range-deletes those qrev entries."""
    head = L.tq(topic_id, queue_id)
    for key, value in reverse:
        tail = key[8:]
        pos = 0
        while pos < len(value):
            _, length = _SUFFIX.unpack_from(value, pos)
            end = pos + _SUFFIX.size + length
            delete("qidx", head + value[pos:end] + tail)
            pos = end


