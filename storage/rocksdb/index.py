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

import rocksdict

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


_LEN16 = struct.Struct(">H")
_LEN32 = struct.Struct(">I")
_KEYS_NAME = _LEN16.pack(len(_KEYS_MARK)) + _KEYS_MARK
"""The keys property's name as :func:`storage.rocksdb.layout.encode_entry` writes it."""


def _entry_keys(entry: bytes) -> list[bytes]:
    """The keys of an encoded entry, without decoding it: the keys property comes last
    (:func:`storage.query_contract.properties_with_keys` adds it last), so its value must end
    exactly at the end of the entry."""
    at = entry.rfind(_KEYS_NAME)
    if at < 0:
        return []
    start = at + len(_KEYS_NAME)
    (length,) = _LEN32.unpack_from(entry, start)
    if start + 4 + length != len(entry):
        return [k.encode() for k in entry_keys(L.decode_entry(entry)[3])]  # not last after all: decode it
    return [key for key in entry[start + 4:].split(b"\x00") if key]


def index_message(put: Put, topic_id: int, queue_id: int, offset: int, message_id: str, entry: bytes) -> None:
    """Put the index keys of a message being appended (in the append's own batch)."""
    raw_id = message_id.encode()[:0xFFFF]
    suffixes = [_SUFFIX.pack(1, len(raw_id)) + raw_id]
    tag = L.entry_tag(entry)
    if tag is not None:
        suffixes.append(_SUFFIX.pack(3, len(tag)) + tag)
    if _KEYS_MARK in entry:
        suffixes.extend(_SUFFIX.pack(2, len(key)) + key for key in _entry_keys(entry) if len(key) <= 0xFFFF)
    head = L.tq(topic_id, queue_id)
    tail = L.u64(offset)
    for part in suffixes:
        put("qidx", head + part + tail, b"")
    put("qrev", head + tail, b"".join(suffixes))


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




def newest_offsets(qidx: rocksdict.Rdict, topic_id: int, queue_id: int, kind: int, value: str,
                   limit: int) -> list[int]:
    """Offsets of one queue whose message has ``value`` under index ``kind``, newest first, at most
    ``limit``: one seek backwards from the end of the prefix."""
    prefix = L.tq(topic_id, queue_id) + suffix(kind, value)
    options = rocksdict.ReadOptions()
    options.set_iterate_upper_bound(L.next_prefix(prefix))  # an upper bound; the lower is checked below
    iterator = qidx.iter(options)
    iterator.seek_for_prev(prefix + b"\xff" * 8)
    found: list[int] = []
    while iterator.valid() and len(found) < limit:
        key = iterator.key()
        if not key.startswith(prefix) or len(key) != len(prefix) + 8:
            break
        found.append(L.read_u64(key[-8:]))
        iterator.prev()
    return found
