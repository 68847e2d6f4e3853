"""Between protocol messages and store values. No policy, no validation (see validate.py)."""

from __future__ import annotations

import hashlib

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy import receipt as receipt_codec
from rmqproxy.lite_names import shown_topic
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import DigestType, Encoding, Message, MessageType, Resource
from storage.model import HalfMessage, NewMessage, Popped, StoredMessage
from storage.query_contract import properties_with_keys

# System properties only the server sets; whatever a producer put there is dropped.
_SERVER_ONLY = ("store_timestamp", "receipt_handle", "queue_offset", "invisible_duration", "delivery_attempt",
                "dead_letter_queue")


def to_new_message(message: Message, message_type: MessageType, store_host: str, now_ms: int, *,
                   deliver_at_ms: int | None = None, first_check_ms: int | None = None) -> NewMessage:
    """The store's view of a validated message. The payload is the whole wire message, completed
    with what the server adds at send time (digest, type, store host, a corrected delivery time),
    so a delivery only has to stamp the per-delivery fields on it."""
    sp = message.system_properties
    for name in _SERVER_ONLY:
        sp.ClearField(name)
    if sp.HasField("tag") and not sp.tag:
        sp.ClearField("tag")  # an empty tag is no tag (validate.py)
    if "" in sp.keys:
        kept = [key for key in sp.keys if key]
        del sp.keys[:]
        sp.keys.extend(kept)
    sp.message_type = message_type
    if sp.body_encoding == Encoding.ENCODING_UNSPECIFIED:
        sp.body_encoding = Encoding.IDENTITY
    if not sp.HasField("body_digest") or sp.body_digest.type == DigestType.DIGEST_TYPE_UNSPECIFIED:
        sp.body_digest.type = DigestType.MD5
        sp.body_digest.checksum = hashlib.md5(message.body).hexdigest().upper()
    sp.store_host = store_host
    if not sp.HasField("born_timestamp"):
        sp.born_timestamp.FromMilliseconds(now_ms)  # a bare grpcurl send has none
    if deliver_at_ms is not None:
        # Consumers see when it was due, in a proper Timestamp whatever the producer wrote.
        sp.delivery_timestamp.FromMilliseconds(deliver_at_ms)
    return NewMessage(
        message_id=sp.message_id,
        payload=message.SerializeToString(),
        tag=sp.tag if sp.HasField("tag") else None,
        message_group=sp.message_group if sp.HasField("message_group") else None,
        properties=properties_with_keys(message.user_properties, sp.keys),
        deliver_at_ms=deliver_at_ms,
        priority=(sp.priority if sp.HasField("priority") else 0) if message_type == MessageType.PRIORITY else None,
        first_check_ms=first_check_ms,
    )


DLQ_ORIGIN_TOPIC = "DLQ_ORIGIN_TOPIC"
DLQ_ORIGIN_MESSAGE_ID = "DLQ_ORIGIN_MESSAGE_ID"
DLQ_DELIVERY_ATTEMPTS = "DLQ_DELIVERY_ATTEMPTS"


def fill_delivered(target: Message, popped: Popped, invisible_ms: int) -> None:
    """Decode a stored message into ``target`` and stamp this delivery's fields on it.

    A dead letter also carries where it came from: the system property ``dead_letter_queue``
    (origin topic and message id) and, for clients that do not read that property (the Python
    client), the user properties DLQ_ORIGIN_TOPIC, DLQ_ORIGIN_MESSAGE_ID and DLQ_DELIVERY_ATTEMPTS
    (deliveries made before it was dead-lettered)."""
    fill_stored(target, popped.message)
    sp = target.system_properties
    sp.receipt_handle = receipt_codec.encode(popped.receipt)
    sp.delivery_attempt = popped.attempt
    sp.invisible_duration.CopyFrom(duration(invisible_ms))


def fill_stored(target: Message, stored: StoredMessage) -> None:
    """Decode a stored message into ``target`` with where it is stored (and, for a dead letter,
    where it came from): what a pull reads, a delivery without its receipt."""
    target.ParseFromString(stored.payload)
    sp = target.system_properties
    # A lite topic shows its parent; a dead letter's payload still names its original topic.
    target.topic.name = shown_topic(stored.topic)
    if stored.dead_letter is not None:
        origin = stored.dead_letter
        sp.dead_letter_queue.topic = origin.topic
        sp.dead_letter_queue.message_id = origin.message_id
        target.user_properties[DLQ_ORIGIN_TOPIC] = origin.topic
        target.user_properties[DLQ_ORIGIN_MESSAGE_ID] = origin.message_id
        target.user_properties[DLQ_DELIVERY_ATTEMPTS] = str(origin.attempts)
    sp.store_timestamp.FromMilliseconds(stored.store_ms)
    sp.queue_id = stored.queue_id
    sp.queue_offset = stored.offset


def half_message(half: HalfMessage) -> Message:
    """A half message as the producer's checker sees it (RecoverOrphanedTransactionCommand)."""
    message = Message()
    message.ParseFromString(half.message.payload)
    message.topic.name = half.topic
    message.system_properties.store_timestamp.FromMilliseconds(half.message.store_ms)
    message.system_properties.queue_id = half.message.queue_id
    return message


def stored_message(stored: StoredMessage) -> Message:
    """A stored message as it was sent, with where it was stored (VerifyMessageCommand)."""
    message = Message()
    message.ParseFromString(stored.payload)
    message.topic.name = shown_topic(stored.topic)
    sp = message.system_properties
    sp.store_timestamp.FromMilliseconds(stored.store_ms)
    sp.queue_id = stored.queue_id
    sp.queue_offset = stored.offset
    return message


def duration(ms: int) -> Duration:
    value = Duration()
    value.FromMilliseconds(ms)
    return value


def millis(value: Duration | Timestamp) -> int:
    """Milliseconds of a Duration, or epoch milliseconds of a Timestamp, for any field values.

    protobuf's own ToMilliseconds raises ValueError for values outside the well-known types'
    ranges (seconds beyond 10,000 years, nanos of the wrong sign), which a client can send: the
    arithmetic here never fails, and the callers' range checks refuse nonsense with the right
    code instead."""
    return int(value.seconds) * 1000 + int(value.nanos) // 1_000_000


def resource(name: str, namespace: str = "") -> Resource:
    return Resource(name=name, resource_namespace=namespace)
