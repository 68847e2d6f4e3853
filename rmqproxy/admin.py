"""rmqproxy.admin.v1.Admin: topics and consumer groups, for the ``rmqproxy`` command and grpcurl.

Errors are gRPC status codes (this is our own API): INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy.broker.broker import Broker
from rmqproxy.config import ServerConfig
from rmqproxy.context import ServicerContext
from rmqproxy.errors import to_grpc_status
from rmqproxy.names import name_problem
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from storage.base import MessageStore
from storage.model import GroupConfig, GroupQueueProgress, TopicConfig, TopicType

MAX_QUEUES = 256

_TYPES = {
    api.TOPIC_TYPE_UNSPECIFIED: TopicType.NORMAL,
    api.NORMAL: TopicType.NORMAL,
    api.FIFO: TopicType.FIFO,
    api.DELAY: TopicType.DELAY,
    api.TRANSACTION: TopicType.TRANSACTION,
}
_API_TYPES = {TopicType.NORMAL: api.NORMAL, TopicType.FIFO: api.FIFO, TopicType.DELAY: api.DELAY,
              TopicType.TRANSACTION: api.TRANSACTION}
SUPPORTED_TYPES = frozenset({TopicType.NORMAL})
"""Topic types whose message semantics this build implements."""


def _timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def topic_message(topic: TopicConfig) -> api.Topic:
    return api.Topic(name=topic.name, type=_API_TYPES[topic.type], queues=topic.queues,
                     created=_timestamp(topic.created_ms))


def group_message(group: GroupConfig) -> api.Group:
    return api.Group(name=group.name, created=_timestamp(group.created_ms), from_beginning=group.from_beginning)


def topic_progress(topic: str, group: str, queues: list[GroupQueueProgress]) -> api.TopicProgress:
    return api.TopicProgress(
        topic=topic, group=group,
        queues=[api.QueueProgress(queue_id=q.queue_id, min_offset=q.min_offset, max_offset=q.max_offset,
                                  committed_offset=q.committed_offset, next_offset=q.next_offset, ready=q.ready,
                                  inflight=q.inflight, retry_ready=q.retry_ready) for q in queues],
        ready=sum(q.ready for q in queues),
        inflight=sum(q.inflight for q in queues),
    )


async def _abort(context: ServicerContext, exc: BaseException) -> NoReturn:
    status, message = to_grpc_status(exc)
    await context.abort(status, message)
    raise AssertionError("abort returned")  # pragma: no cover


class AdminService(api_grpc.AdminServicer):
    def __init__(self, broker: Broker, config: ServerConfig) -> None:
        self._broker = broker
        self._config = config

    @staticmethod
    async def _invalid(context: ServicerContext, message: str) -> NoReturn:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        raise AssertionError("abort returned")  # pragma: no cover

    # -- topics ------------------------------------------------------------------------------

    async def CreateTopic(self, request: api.CreateTopicRequest, context: ServicerContext) -> Any:
        problem = name_problem("topic", request.name)
        if problem:
            await self._invalid(context, problem)
        topic_type = _TYPES.get(request.type)
        if topic_type is None:
            await self._invalid(context, f"unknown topic type {request.type}")
        if topic_type not in SUPPORTED_TYPES:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                f"{topic_type.value} topics are not supported yet by this server")
        queues = request.queues or self._config.default_queues
        if not 1 <= queues <= MAX_QUEUES:
            await self._invalid(context, f"a topic has 1 to {MAX_QUEUES} queues, not {queues}")
        try:
            return topic_message(await self._broker.create_topic(request.name, topic_type, queues))
        except Exception as exc:
            await _abort(context, exc)

    async def DescribeTopic(self, request: api.DescribeTopicRequest, context: ServicerContext) -> Any:
        name = request.name

        def describe(store: MessageStore, now: int) -> tuple[Any, ...]:
            topic = store.get_topic(name)
            if topic is None:
                return ()
            groups = store.topic_groups(name)
            return topic, store.queue_offsets(name), [(g, store.progress(g, name)) for g in groups]

        try:
            found = await self._broker.store(describe)
        except Exception as exc:
            await _abort(context, exc)
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"topic {name!r} does not exist")
        topic, offsets, groups = found
        return api.TopicDescription(
            topic=topic_message(topic),
            queues=[api.QueueOffsets(queue_id=o.queue_id, min_offset=o.min_offset, max_offset=o.max_offset)
                    for o in offsets],
            groups=[topic_progress(name, group, progress) for group, progress in groups],
        )

    async def ListTopics(self, request: api.ListTopicsRequest, context: ServicerContext) -> Any:
        return api.ListTopicsResponse(topics=[topic_message(t) for t in self._broker.list_topics()])

    async def DeleteTopic(self, request: api.DeleteTopicRequest, context: ServicerContext) -> Any:
        try:
            await self._broker.delete_topic(request.name)
        except Exception as exc:
            await _abort(context, exc)
        return api.DeleteTopicResponse()

    # -- groups ------------------------------------------------------------------------------

    async def CreateGroup(self, request: api.CreateGroupRequest, context: ServicerContext) -> Any:
        problem = name_problem("consumer group", request.name)
        if problem:
            await self._invalid(context, problem)
        try:
            group = await self._broker.create_group(request.name, from_beginning=request.from_beginning)
        except Exception as exc:
            await _abort(context, exc)
        return group_message(group)

    async def DescribeGroup(self, request: api.DescribeGroupRequest, context: ServicerContext) -> Any:
        name = request.name
        consumers = self._broker.clients.consumers(name)
        subscribed = {topic for c in consumers for topic in c.subscriptions}

        def describe(store: MessageStore, now: int) -> tuple[Any, ...]:
            group = store.get_group(name)
            if group is None:
                return ()
            topics = sorted((set(store.group_topics(name)) | subscribed) & {t.name for t in store.list_topics()})
            return group, [(t, store.progress(name, t)) for t in topics]

        try:
            found = await self._broker.store(describe)
        except Exception as exc:
            await _abort(context, exc)
        if not found:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"consumer group {name!r} does not exist")
        group, topics = found
        return api.GroupDescription(
            group=group_message(group),
            topics=[topic_progress(topic, name, progress) for topic, progress in topics],
            consumers=[
                api.Consumer(client_id=c.client_id, address=c.address, language=c.language,
                             client_version=c.version, client_type=c.client_type,
                             last_heartbeat=_timestamp(c.last_heartbeat_ms or c.last_seen_ms),
                             subscriptions=c.subscriptions)
                for c in sorted(consumers, key=lambda c: c.client_id)
            ],
        )

    async def ListGroups(self, request: api.ListGroupsRequest, context: ServicerContext) -> Any:
        return api.ListGroupsResponse(groups=[group_message(g) for g in self._broker.list_groups()])

    async def DeleteGroup(self, request: api.DeleteGroupRequest, context: ServicerContext) -> Any:
        try:
            await self._broker.delete_group(request.name)
        except Exception as exc:
            await _abort(context, exc)
        return api.DeleteGroupResponse()
