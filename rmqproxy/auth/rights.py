"""What each RPC needs, as the reference proxy asks it (docs/auth.md has the table).

A :class:`Need` names one resource and the actions of which the caller must hold at least one
(QueryRoute takes Pub or Sub). These functions run only when authorization is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rmqproxy.handlers.settings import CONSUMER_TYPES
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from storage.auth_model import Action, ResourceType


class Need(NamedTuple):
    kind: ResourceType
    name: str
    any_of: tuple[Action, ...]

    def describe(self) -> str:
        actions = " or ".join(a.value for a in self.any_of)
        where = "* (cluster-wide)" if self.kind is ResourceType.CLUSTER else f"{self.kind.value} {self.name}"
        return f"no {actions} right on {where}"


_PUB = (Action.PUB,)
_SUB = (Action.SUB,)
_PUB_OR_SUB = (Action.PUB, Action.SUB)


def topic(name: str, actions: tuple[Action, ...]) -> Need:
    return Need(ResourceType.TOPIC, name, actions)


def group(name: str, actions: tuple[Action, ...]) -> Need:
    return Need(ResourceType.GROUP, name, actions)


def cluster(actions: tuple[Action, ...]) -> Need:
    """Admin RPCs without a topic or group (list users, ACLs): only ``*`` entries match."""
    return Need(ResourceType.CLUSTER, "", actions)


def send(request: rpc.SendMessageRequest) -> Sequence[Need]:
    messages = request.messages
    if len(messages) == 1:
        return [topic(messages[0].topic.name, _PUB)]
    return [topic(name, _PUB) for name in {m.topic.name for m in messages}]


def recall(request: rpc.RecallMessageRequest) -> Sequence[Need]:
    return [topic(request.topic.name, _PUB)]


def end_transaction(request: rpc.EndTransactionRequest) -> Sequence[Need]:
    return [topic(request.topic.name, _PUB)]


def query_route(request: rpc.QueryRouteRequest) -> Sequence[Need]:
    return [topic(request.topic.name, _PUB_OR_SUB)]


def consume(topic_name: str, group_name: str) -> Sequence[Need]:
    """Receive, Ack, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue, QueryAssignment."""
    return [topic(topic_name, _SUB), group(group_name, _SUB)]


def query_offset(topic_name: str) -> Sequence[Need]:
    """QueryOffset names a queue and no group: reading the topic's offsets is a topic right."""
    return [topic(topic_name, _SUB)]


def heartbeat(client_type: int, group_name: str) -> Sequence[Need]:
    """Heartbeat and NotifyClientTermination of a consumer: Sub on its group; producers need nothing."""
    if client_type in CONSUMER_TYPES and group_name:
        return [group(group_name, _SUB)]
    return ()


def settings(value: pb.Settings) -> Sequence[Need]:
    """Telemetry Settings: a producer needs Pub on each topic it publishes to, a consumer Sub on its
    group and on each topic it subscribes to."""
    if value.client_type == pb.ClientType.PRODUCER:
        return [topic(t.name, _PUB) for t in value.publishing.topics]
    if value.client_type in CONSUMER_TYPES:
        needs = [group(value.subscription.group.name, _SUB)]
        needs.extend(topic(s.topic.name, _SUB) for s in value.subscription.subscriptions)
        return needs
    return ()
