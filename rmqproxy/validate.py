"""Checks on what producers send, each failing with the code the reference server uses."""

from __future__ import annotations

import re

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from rmqproxy.config import ServerConfig
from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code, Message, MessageType
from storage.model import TopicType

RESERVED_PROPERTY_KEYS = frozenset({
    "TRACE_ON", "MSG_REGION", "KEYS", "TAGS", "WAIT", "DELAY", "RETRY_TOPIC", "REAL_TOPIC", "REAL_QID",
    "TRAN_MSG", "PGROUP", "MIN_OFFSET", "MAX_OFFSET", "BUYER_ID", "ORIGIN_MESSAGE_ID", "TRANSFER_FLAG",
    "CORRECTION_FLAG", "MQ2_FLAG", "RECONSUME_TIME", "UNIQ_KEY", "MAX_RECONSUME_TIMES", "CONSUME_START_TIME",
    "TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS",
    "TIMER_ROLL_TIMES", "TIMER_OUT_MS", "TIMER_DEL_UNIQKEY", "TIMER_DELAY_LEVEL", "DLQ_ORIGIN_TOPIC",
    "DLQ_ORIGIN_MESSAGE_ID", "SHARDING_KEY", "TRACE_CONTEXT", "TRAN_PREPARED_QUEUE_OFFSET",
    "TRANSACTION_CHECK_TIMES", "CHECK_IMMUNITY_TIME_IN_SECONDS", "INSTANCE_ID", "DLQ_DELIVERY_ATTEMPTS",
})
# __STARTDELIVERTIME is allowed on purpose: 4.x clients schedule messages with it.
"""Property names RocketMQ itself uses; a user property may not take them."""

MAX_MESSAGE_ID_LENGTH = 128
START_DELIVER_TIME = "__STARTDELIVERTIME"
"""RocketMQ 4.x clients schedule a message with this user property (epoch ms as a string)."""
MILLIS_AS_SECONDS = 10**11
"""A Timestamp whose seconds exceed this (the year 5138) is a millisecond count written into the
seconds field, as the Python client 5.1.2 does with delivery_timestamp; no delivery time allowed
here is that far away."""

TOPIC_MESSAGE_TYPE = {
    TopicType.NORMAL: MessageType.NORMAL,
    TopicType.FIFO: MessageType.FIFO,
    TopicType.DELAY: MessageType.DELAY,
    TopicType.TRANSACTION: MessageType.TRANSACTION,
    TopicType.PRIORITY: MessageType.PRIORITY,
    TopicType.LITE: MessageType.LITE,
}


_CONTROL_CHAR = re.compile("[\x00-\x1f\x7f]")

# Plain ints: each MessageType.X is a Python-level attribute lookup on the enum wrapper, and these
# are read for every message sent.
_UNSPECIFIED = int(MessageType.MESSAGE_TYPE_UNSPECIFIED)
_NORMAL = int(MessageType.NORMAL)
_FIFO = int(MessageType.FIFO)
_DELAY = int(MessageType.DELAY)
_PRIORITY = int(MessageType.PRIORITY)
_LITE = int(MessageType.LITE)


_MESSAGE_TYPES = frozenset(MessageType.values())


def enum_name(enum: EnumTypeWrapper, value: int) -> str:
    """The name of an enum value as protobuf spells it, or the number for a value this build does
    not know (proto3 enums are open: a client may send any number)."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def _has_control_chars(text: str) -> bool:
    return _CONTROL_CHAR.search(text) is not None


def delivery_time_ms(message: Message) -> int | None:
    """When a scheduled message is due (epoch ms), from ``delivery_timestamp`` or the 4.x property
    ``__STARTDELIVERTIME``; None for a message that is not scheduled."""
    sp = message.system_properties
    if sp.HasField("delivery_timestamp"):
        stamp = sp.delivery_timestamp
        if stamp.seconds > MILLIS_AS_SECONDS:
            return int(stamp.seconds)
        return int(stamp.seconds * 1000 + stamp.nanos // 1_000_000)
    text = message.user_properties.get(START_DELIVER_TIME)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ProtocolError(Code.ILLEGAL_DELIVERY_TIME,
                            f"{START_DELIVER_TIME} must be epoch milliseconds, not {text[:40]!r}") from None


def effective_type(message: Message) -> MessageType:
    """The message's type; when a client (grpcurl, say) leaves it out, inferred as clients do.
    A message scheduled with the 4.x property ``__STARTDELIVERTIME`` is a DELAY message."""
    sp = message.system_properties
    declared: MessageType = sp.message_type
    if declared != _NORMAL and declared != _UNSPECIFIED:
        return declared
    if message.user_properties and START_DELIVER_TIME in message.user_properties:
        return MessageType.DELAY
    if declared == _NORMAL:
        return declared
    if sp.message_group:
        return MessageType.FIFO
    if sp.HasField("delivery_timestamp"):
        return MessageType.DELAY
    if sp.HasField("priority"):
        return MessageType.PRIORITY
    if sp.HasField("lite_topic"):
        return MessageType.LITE
    return MessageType.NORMAL


def validate_message(message: Message, topic_type: TopicType, config: ServerConfig,
                     now_ms: int) -> tuple[MessageType, int | None]:
    """Raise ProtocolError for the first rule the message breaks; otherwise its effective type and,
    for a scheduled message, when it is due (epoch ms)."""
    sp = message.system_properties
    if not sp.message_id.strip():
        raise ProtocolError(Code.ILLEGAL_MESSAGE_ID, "message id is blank")
    if len(sp.message_id) > MAX_MESSAGE_ID_LENGTH or _has_control_chars(sp.message_id):
        raise ProtocolError(Code.ILLEGAL_MESSAGE_ID, f"message id is longer than {MAX_MESSAGE_ID_LENGTH} "
                            "characters or has control characters")
    size = len(message.body)
    if size == 0:
        raise ProtocolError(Code.MESSAGE_BODY_EMPTY, "message body is empty")
    if size > config.max_body_bytes:
        raise ProtocolError(Code.MESSAGE_BODY_TOO_LARGE,
                            f"message body is {size} bytes; the limit is {config.max_body_bytes}")
    properties = message.user_properties
    if len(properties) > config.max_properties:
        raise ProtocolError(Code.MESSAGE_PROPERTIES_TOO_LARGE,
                            f"{len(properties)} user properties; the limit is {config.max_properties}")
    total = 0
    for key, value in properties.items():
        if not key or key in RESERVED_PROPERTY_KEYS or _has_control_chars(key):
            raise ProtocolError(Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
                                f"user property key {key!r} is empty, reserved or has control characters")
        total += len(key.encode()) + len(value.encode())
    if total > config.max_properties_bytes:
        raise ProtocolError(Code.MESSAGE_PROPERTIES_TOO_LARGE,
                            f"user properties take {total} bytes; the limit is {config.max_properties_bytes}")
    # An empty tag or key is no tag or key (Apache RocketMQ stores such a message as if it had
    # none; rmqproxy/convert.py drops them); a blank one is refused, as there.
    if sp.tag and (not sp.tag.strip() or "|" in sp.tag or _has_control_chars(sp.tag)):
        raise ProtocolError(Code.ILLEGAL_MESSAGE_TAG, f"tag {sp.tag!r} is blank or contains '|' or control characters")
    for key in sp.keys:
        if key and (not key.strip() or _has_control_chars(key)):
            raise ProtocolError(Code.ILLEGAL_MESSAGE_KEY, f"message key {key!r} is blank or has control characters")
    if sp.HasField("message_group"):
        group_size = len(sp.message_group.encode())
        if not sp.message_group.strip() or group_size > config.max_message_group_bytes:
            raise ProtocolError(Code.ILLEGAL_MESSAGE_GROUP,
                                f"message group is blank or longer than {config.max_message_group_bytes} bytes")
    if topic_type is TopicType.FIFO and not sp.HasField("message_group"):
        raise ProtocolError(Code.ILLEGAL_MESSAGE_GROUP,
                            f"messages sent to FIFO topic {message.topic.name!r} need a message group")
    message_type = effective_type(message)
    if message_type not in _MESSAGE_TYPES:
        raise ProtocolError(Code.BAD_REQUEST, f"unknown message type {message_type}")
    expected = TOPIC_MESSAGE_TYPE[topic_type]
    if message_type != expected:
        raise ProtocolError(
            Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
            f"a {MessageType.Name(message_type)} message cannot be sent to {topic_type.value} topic "
            f"{message.topic.name!r}, which accepts {MessageType.Name(expected)} messages")
    if sp.HasField("priority") or message_type == _PRIORITY:
        _check_priority(message, message_type)
    if sp.HasField("lite_topic") or message_type == _LITE:
        _check_lite(message, message_type)
    due = delivery_time_ms(message)
    if message_type == _DELAY:
        if due is None:
            raise ProtocolError(Code.ILLEGAL_DELIVERY_TIME, "a DELAY message needs a delivery_timestamp")
        if due > now_ms + config.max_delay_ms:
            raise ProtocolError(Code.ILLEGAL_DELIVERY_TIME,
                                f"delivery time is {(due - now_ms) / 86_400_000:.1f} days away; the limit is "
                                f"{config.max_delay_ms / 86_400_000:g} days")
    elif due is not None:
        raise ProtocolError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            f"a {MessageType.Name(message_type)} message cannot have a delivery time")
    return message_type, due


def _check_priority(message: Message, message_type: MessageType) -> None:
    """RIP-80: a priority (>= 0) belongs to PRIORITY messages only, and a PRIORITY message is
    neither FIFO nor scheduled (the clients refuse those mixes before sending; the server too)."""
    sp = message.system_properties
    if message_type != _PRIORITY:
        raise ProtocolError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            f"a {MessageType.Name(message_type)} message cannot have a priority")
    if sp.HasField("priority") and sp.priority < 0:
        raise ProtocolError(Code.BAD_REQUEST, f"priority {sp.priority} is negative; it must be >= 0")
    if sp.HasField("message_group"):
        raise ProtocolError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            "a PRIORITY message cannot have a message group")


def _check_lite(message: Message, message_type: MessageType) -> None:
    """RIP-83: a lite topic belongs to LITE messages only, and a LITE message names its lite topic
    (its name is checked against the server's rules when it is sent: rmqproxy/broker/lite.py)."""
    sp = message.system_properties
    if message_type != _LITE:
        raise ProtocolError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            f"a {MessageType.Name(message_type)} message cannot have a lite topic")
    if not sp.HasField("lite_topic"):
        raise ProtocolError(Code.ILLEGAL_LITE_TOPIC, "a LITE message needs a lite topic")
    if sp.HasField("message_group"):
        raise ProtocolError(Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            "a LITE message cannot have a message group (each lite topic keeps its order)")
