"""Receipt handles: the opaque strings clients hand back to ack or change a delivery.

A handle is ``base64url(version | group id | topic id | queue id | offset | generation)``: enough
for the store to find the in-flight record and to tell a current delivery from a superseded one.

    version 1   group u32 | topic u32 | queue u32 | offset u64 | generation u32   (25 bytes)
    version 2   group u32 | topic u32 | queue u32 | offset u64 | generation u64   (29 bytes)

Handles are written in version 2: the store's generation counter is 64-bit (the RocksDB store
moves it ahead by a block at every start), and past 2^32 a version 1 handle could not carry it.
Version 1 handles, from before, still decode: they were only ever written for generations that
fit. Anything else is malformed (INVALID_RECEIPT_HANDLE).
"""

from __future__ import annotations

import base64
import binascii
import struct

from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code
from storage.model import Receipt

_V1 = 1
_V2 = 2
_LAYOUTS = {_V1: struct.Struct(">BIIIQI"), _V2: struct.Struct(">BIIIQQ")}


def encode(receipt: Receipt) -> str:
    raw = _LAYOUTS[_V2].pack(_V2, receipt.group_id, receipt.topic_id, receipt.queue_id, receipt.offset,
                             receipt.generation)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(handle: str) -> Receipt:
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, f"malformed receipt handle {handle[:80]!r}") from exc
    if not raw:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, "empty receipt handle")
    layout = _LAYOUTS.get(raw[0])
    if layout is None:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, f"unknown receipt handle version {raw[0]}")
    try:
        _, group_id, topic_id, queue_id, offset, generation = layout.unpack(raw)
    except struct.error as exc:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, f"malformed receipt handle {handle[:80]!r}") from exc
    return Receipt(group_id, topic_id, queue_id, offset, generation)
