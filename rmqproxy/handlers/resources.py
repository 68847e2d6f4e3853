"""The preamble every handler shares: check the names a request gives, then look the topic and
consumer group up (auto-creating them when the server is told to), each failing with its own code."""

from __future__ import annotations

from rmqproxy.broker.broker import Broker
from rmqproxy.errors import ProtocolError
from rmqproxy.names import is_valid_resource_name
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from storage.model import GroupConfig, TopicConfig


def check_topic_name(name: str) -> None:
    if not is_valid_resource_name(name):
        raise ProtocolError(pb.Code.ILLEGAL_TOPIC, f"illegal topic name {name!r}")


def check_group_name(name: str) -> None:
    if not is_valid_resource_name(name):
        raise ProtocolError(pb.Code.ILLEGAL_CONSUMER_GROUP, f"illegal consumer group name {name!r}")


async def topic_named(broker: Broker, name: str) -> TopicConfig:
    """ILLEGAL_TOPIC for a bad name, TOPIC_NOT_FOUND for a missing topic."""
    check_topic_name(name)
    return await broker.topic(name)


async def group_named(broker: Broker, name: str) -> GroupConfig:
    """ILLEGAL_CONSUMER_GROUP for a bad name, CONSUMER_GROUP_NOT_FOUND for a missing group."""
    check_group_name(name)
    return await broker.group(name)


async def group_and_topic(broker: Broker, group: str, topic: str) -> tuple[GroupConfig, TopicConfig]:
    """Both names are checked before either is looked up: a malformed request never auto-creates."""
    check_group_name(group)
    check_topic_name(topic)
    return await broker.group(group), await broker.topic(topic)
