"""Receipt handles: the opaque strings clients hand back to ack or change a delivery.

A handle is ``base64url(version | group id | topic id | queue id | offset | generation)``:
enough for the store to find the in-flight record and to tell a current delivery from a
superseded one. Anything that does not decode is malformed (INVALID_RECEIPT_HANDLE).
"""

from __future__ import annotations

import base64
import binascii
import struct

from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code
from storage.model import Receipt

_V1 = 1
_LAYOUT = struct.Struct(">BIIIQI")


def encode(receipt: Receipt) -> str:
    raw = _LAYOUT.pack(_V1, receipt.group_id, receipt.topic_id, receipt.queue_id, receipt.offset,
                       receipt.generation)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(handle: str) -> Receipt:
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
        version, group_id, topic_id, queue_id, offset, generation = _LAYOUT.unpack(raw)
    except (binascii.Error, struct.error, ValueError) as exc:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, f"malformed receipt handle {handle[:80]!r}") from exc
    if version != _V1:
        raise ProtocolError(Code.INVALID_RECEIPT_HANDLE, f"unknown receipt handle version {version}")
    return Receipt(group_id, topic_id, queue_id, offset, generation)
