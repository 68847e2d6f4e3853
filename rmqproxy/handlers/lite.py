"""Lite topics (RIP-83) at the protocol edge: SyncLiteSubscription, and the lite topic a consumer's
ack, change of invisibility or dead-lettering names (rmqproxy/broker/lite.py has the policy)."""

from __future__ import annotations

from rmqproxy import receipt as receipt_codec
from rmqproxy.broker.broker import Broker
from rmqproxy.broker.errors import StaleLiteSubscription
from rmqproxy.broker.lite import LiteActions, OffsetChoice
from rmqproxy.context import RequestContext
from rmqproxy.errors import ProtocolError, to_status
from rmqproxy.handlers.resources import group_and_topic
from rmqproxy.lite_names import split_lite_store_name
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from storage.errors import StoreError
from storage.model import GroupConfig, Receipt, TopicConfig, TopicType

_ACTIONS = frozenset({LiteActions.PARTIAL_ADD, LiteActions.PARTIAL_REMOVE, LiteActions.COMPLETE_ADD,
                      LiteActions.COMPLETE_REMOVE})
_POLICIES = {pb.OffsetOption.Policy.LAST: "LAST", pb.OffsetOption.Policy.MIN: "MIN",
             pb.OffsetOption.Policy.MAX: "MAX"}


def is_lite_parent(topic: TopicConfig) -> bool:
    return topic.type is TopicType.LITE and split_lite_store_name(topic.name) is None


async def addressed_topic(broker: Broker, topic: TopicConfig, lite: str | None) -> TopicConfig:
    """The topic a consumer request acts on: the lite topic it names inside a lite parent, else
    the topic itself. A lite topic named for any other topic is refused (ILLEGAL_LITE_TOPIC)."""
    if not is_lite_parent(topic):
        if lite:
            raise ProtocolError(pb.Code.ILLEGAL_LITE_TOPIC,
                                f"topic {topic.name!r} is not a lite topic parent; it has no lite topic {lite[:80]!r}")
        return topic
    if lite is None:
        raise ProtocolError(pb.Code.ILLEGAL_LITE_TOPIC, f"a message of lite topic parent {topic.name!r} "
                            "is named with its lite_topic")
    found = await broker.lite_topic(topic, lite, create=False)
    if found is None:
        raise ProtocolError(pb.Code.TOPIC_NOT_FOUND, f"topic {topic.name!r} has no lite topic {lite!r}")
    return found


def offset_choice(request: rpc.SyncLiteSubscriptionRequest) -> OffsetChoice | None:
    if not request.HasField("offset_option"):
        return None
    option = request.offset_option
    kind = option.WhichOneof("offset_type")
    if kind == "policy":
        if option.policy not in _POLICIES:
            raise ProtocolError(pb.Code.BAD_REQUEST, f"unknown offset policy {option.policy}")
        return OffsetChoice(policy=_POLICIES[option.policy])
    if kind == "offset":
        if option.offset < 0:
            raise ProtocolError(pb.Code.BAD_REQUEST, f"offset {option.offset} is negative")
        return OffsetChoice(offset=option.offset)
    if kind == "tail_n":
        if option.tail_n < 0:
            raise ProtocolError(pb.Code.BAD_REQUEST, f"tail_n {option.tail_n} is negative")
        return OffsetChoice(tail_n=option.tail_n)
    if kind == "timestamp":
        if option.timestamp < 0:
            raise ProtocolError(pb.Code.BAD_REQUEST, f"timestamp {option.timestamp} is negative")
        return OffsetChoice(timestamp_ms=option.timestamp)
    return None  # an empty OffsetOption: where the group is


async def sync_lite_subscription(broker: Broker, request: rpc.SyncLiteSubscriptionRequest,
                                 ctx: RequestContext) -> rpc.SyncLiteSubscriptionResponse:
    if request.action not in _ACTIONS:
        raise ProtocolError(pb.Code.BAD_REQUEST, f"unknown lite subscription action {request.action}")
    group, topic = await group_and_topic(broker, request.group.name, request.topic.name)
    if not is_lite_parent(topic):
        raise ProtocolError(pb.Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                            f"topic {topic.name!r} is a {topic.type.value} topic, not a lite topic parent")
    if not ctx.client_id:
        raise ProtocolError(pb.Code.UNRECOGNIZED_CLIENT_TYPE, "a lite subscription needs the x-mq-client-id header")
    try:
        await broker.sync_lite_subscription(ctx.client_id, group, topic, request.action, request.lite_topic_set,
                                            request.version if request.HasField("version") else None,
                                            offset_choice(request))
    except StaleLiteSubscription as stale:
        # Late, not wrong: what the client wants now is applied already; a failure would make it retry.
        return rpc.SyncLiteSubscriptionResponse(status=pb.Status(code=pb.Code.OK, message=str(stale)))
    return rpc.SyncLiteSubscriptionResponse(status=pb.Status(code=pb.Code.OK, message="OK"))


async def ack_lite(broker: Broker, group: GroupConfig, parent: TopicConfig,
                   request: rpc.AckMessageRequest) -> list[pb.Status]:
    """Ack the entries of a lite parent, each in the lite topic it names; a status per entry."""
    statuses: list[pb.Status | None] = []
    by_topic: dict[str, tuple[TopicConfig, list[tuple[int, Receipt]]]] = {}
    for index, entry in enumerate(request.entries):
        try:
            topic = await addressed_topic(broker, parent, entry.lite_topic if entry.HasField("lite_topic") else None)
            by_topic.setdefault(topic.name, (topic, []))[1].append((index, receipt_codec.decode(entry.receipt_handle)))
            statuses.append(None)
        except ProtocolError as exc:
            statuses.append(pb.Status(code=exc.code, message=exc.message))
    for topic, items in by_topic.values():
        results: list[StoreError | None] = await broker.ack(group, topic, [r for _, r in items])
        for (index, _), error in zip(items, results, strict=True):
            if error is None:
                statuses[index] = pb.Status(code=pb.Code.OK, message="OK")
            else:
                code, message = to_status(error)
                statuses[index] = pb.Status(code=code, message=message)
    return [s if s is not None else pb.Status(code=pb.Code.INTERNAL_SERVER_ERROR) for s in statuses]
