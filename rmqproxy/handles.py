"""Recall handles and transaction ids: opaque strings that name a scheduled message or a
transactional half message, so the store can find it again.

    recall handle  = base64url(version | topic id | due time (ms) | timer id)
    transaction id = base64url(version | topic id | transaction number)

Anything that does not decode, or names another topic than the request's, is refused.
"""

from __future__ import annotations

import base64
import binascii
import struct

from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code

_V1 = 1
_RECALL = struct.Struct(">BIQQ")
_TRANSACTION = struct.Struct(">BIQ")


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str, layout: struct.Struct) -> tuple[int, ...]:
    try:
        fields: tuple[int, ...] = layout.unpack(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, struct.error, ValueError) as exc:
        raise ValueError(text) from exc
    if fields[0] != _V1:
        raise ValueError(text)
    return fields[1:]


def encode_recall(topic_id: int, due_ms: int, timer_id: int) -> str:
    return _encode(_RECALL.pack(_V1, topic_id, due_ms, timer_id))


def decode_recall(handle: str, topic_id: int) -> tuple[int, int]:
    """(due time, timer id) of a recall handle for the topic; BAD_REQUEST if it is not one."""
    try:
        handle_topic, due_ms, timer_id = _decode(handle, _RECALL)
    except ValueError:
        raise ProtocolError(Code.BAD_REQUEST, f"malformed recall handle {handle[:80]!r}") from None
    if handle_topic != topic_id:
        raise ProtocolError(Code.BAD_REQUEST, "the recall handle belongs to another topic")
    return due_ms, timer_id


def encode_transaction(topic_id: int, number: int) -> str:
    return _encode(_TRANSACTION.pack(_V1, topic_id, number))


def decode_transaction(transaction_id: str, topic_id: int) -> int:
    """The transaction number of an id for the topic; INVALID_TRANSACTION_ID if it is not one."""
    try:
        id_topic, number = _decode(transaction_id, _TRANSACTION)
    except ValueError:
        raise ProtocolError(Code.INVALID_TRANSACTION_ID, f"malformed transaction id {transaction_id[:80]!r}") from None
    if id_topic != topic_id:
        raise ProtocolError(Code.INVALID_TRANSACTION_ID, "the transaction id belongs to another topic")
    return number
