"""rmqproxy.admin.v1.Admin: topics and consumer groups, for the ``rmqproxy`` command and grpcurl.

Errors are gRPC status codes (this is our own API): INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS;
the call pipeline (rmqproxy/pipeline.py) maps them, and checks the caller's rights when auth is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rmqproxy.admin_convert import (
    API_TOPIC_TYPES,
    MAX_QUEUES,
    SUPPORTED_TYPES,
    TOPIC_TYPES,
    consumer_messages,
    duration_message,
    group_filters,
    group_message,
    group_progress,
    settings_changes,
    timestamp_message,
    topic_progress,
    with_fifo_default,
)
from rmqproxy.auth import rights
from rmqproxy.auth.rights import Need
from rmqproxy.broker.broker import Broker
from rmqproxy.broker.errors import IllegalLiteTopic, Unsupported
from rmqproxy.clock import Clock
from rmqproxy.config import ServerConfig
from rmqproxy.context import ServicerContext
from rmqproxy.convert import millis
from rmqproxy.errors import InvalidArgument
from rmqproxy.handlers.lite import is_lite_parent
from rmqproxy.lite_names import split_lite_store_name
from rmqproxy.names import name_problem
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from rmqproxy.pipeline import Pipeline
from storage.auth_model import Action
from storage.errors import NotFound
from storage.model import (
    OffsetTarget,
    TopicConfig,
    TopicType,
)

_CREATE, _UPDATE, _DELETE, _GET, _LIST = ((a,) for a in (Action.CREATE, Action.UPDATE, Action.DELETE, Action.GET,
                                                          Action.LIST))
class AdminService(api_grpc.AdminServicer):
    """Each RPC runs through the call pipeline (rmqproxy/pipeline.py) with the rights it needs;
    the ``_name`` methods below do the work."""

    def __init__(self, broker: Broker, config: ServerConfig, clock: Clock, pipeline: Pipeline | None = None) -> None:
        self._broker = broker
        self._config = config
        self._clock = clock
        self._pipeline = pipeline if pipeline is not None else Pipeline()

    async def _call(self, name: str, request: Any, context: ServicerContext,
                    work: Callable[[Any, ServicerContext], Awaitable[Any]], needs: Callable[[], Sequence[Need]]) -> Any:
        return await self._pipeline.grpc_unary(name, context, lambda _: work(request, context), needs)

    def _topic_message(self, topic: TopicConfig) -> api.Topic:
        message = api.Topic(name=topic.name, type=API_TOPIC_TYPES[topic.type], queues=topic.queues,
                            created=timestamp_message(topic.created_ms),
                            effective_retention=duration_message(
                                topic.retention_ms or self._broker.settings.retention_ms))
        if topic.retention_ms is not None:
            message.retention.CopyFrom(duration_message(topic.retention_ms))
        return message

    # -- topics ------------------------------------------------------------------------------

    async def _create_topic(self, request: api.CreateTopicRequest, context: ServicerContext) -> Any:
        problem = name_problem("topic", request.name)
        if problem:
            raise InvalidArgument(problem)
        topic_type = TOPIC_TYPES.get(request.type)
        if topic_type is None:
            raise InvalidArgument(f"unknown topic type {request.type}")
        if topic_type not in SUPPORTED_TYPES:
            raise Unsupported(f"{topic_type.value} topics are not supported yet by this server")
        queues = request.queues or self._config.default_queues
        if not 1 <= queues <= MAX_QUEUES:
            raise InvalidArgument(f"a topic has 1 to {MAX_QUEUES} queues, not {queues}")
        retention = millis(request.retention) if request.HasField("retention") else None
        if retention is not None and retention <= 0:
            raise InvalidArgument("retention must be above 0")
        topic = await self._broker.create_topic(request.name, topic_type, queues)
        if retention is not None:
            topic = await self._broker.set_topic_retention(topic.name, retention)
        return self._topic_message(topic)

    async def _update_topic(self, request: api.UpdateTopicRequest, context: ServicerContext) -> Any:
        if request.default_retention:
            topic = await self._broker.set_topic_retention(request.name, None)
        elif request.HasField("retention"):
            if millis(request.retention) <= 0:
                raise InvalidArgument("retention must be above 0")
            topic = await self._broker.set_topic_retention(request.name, millis(request.retention))
        else:
            raise InvalidArgument("nothing to change: give a retention or ask for the default")
        return self._topic_message(topic)

    async def _describe_topic(self, request: api.DescribeTopicRequest, context: ServicerContext) -> Any:
        name = request.name
        found = await self._broker.describe_topic(name)
        if found is None:
            raise NotFound(f"topic {name!r} does not exist")
        now = self._clock.now_ms()
        timers, halves = found.timers, found.halves
        description = api.TopicDescription(
            topic=self._topic_message(found.topic),
            queues=[api.QueueOffsets(queue_id=o.queue_id, min_offset=o.min_offset, max_offset=o.max_offset)
                    for o in found.queues],
            groups=[topic_progress(name, group, progress, now) for group, progress in found.groups],
            pending_timers=timers.pending, pending_transactions=halves.pending,
        )
        if found.topic.type is TopicType.LITE:
            readers = await self._lite_readers(name, now)  # the parent's groups read its lite topics
            kept = [g for g in description.groups if g.group not in {r.group for r in readers}]
            del description.groups[:]
            description.groups.extend(sorted([*kept, *readers], key=lambda g: g.group))
            description.lite_topics = self._broker.lite_count(name)
            page = self._broker.lite_topics_of(name, request.lite_after, request.lite_limit or 100)
            description.lite_topic_names.extend(split_lite_store_name(t.name)[1] for t in page)  # type: ignore[index]
        if timers.next_due_ms is not None:
            description.next_timer_due.CopyFrom(timestamp_message(timers.next_due_ms))
        if halves.next_check_ms is not None:
            description.next_transaction_check.CopyFrom(timestamp_message(halves.next_check_ms))
        return description

    async def _lite_readers(self, parent: str, now_ms: int) -> list[api.TopicProgress]:
        """Per group whose online consumers subscribe to lite topics of ``parent``: its progress
        summed over them, as ``group describe`` shows it."""
        rows = []
        for group, parents in self._broker.lite_subscribed().items():
            names = parents.get(parent)
            if not names:
                continue
            accept = group_filters(self._broker.clients.consumers(group)).get(parent)
            found = await self._broker.describe_group(group, names, dict.fromkeys(names, accept))
            if found is not None:
                rows += [r for r in group_progress(group, found.topics, {parent: names}, now_ms) if r.topic == parent]
        return rows

    async def _list_topics(self, request: api.ListTopicsRequest, context: ServicerContext) -> Any:
        return api.ListTopicsResponse(topics=[self._topic_message(t) for t in self._broker.list_topics()])

    async def _delete_topic(self, request: api.DeleteTopicRequest, context: ServicerContext) -> Any:
        if request.lite_topic:
            parent = self._broker.find_topic(request.name)
            lite = None if parent is None else await self._broker.lite_topic(parent, request.lite_topic, create=False)
            if lite is None:
                raise NotFound(f"topic {request.name!r} has no lite topic {request.lite_topic!r}")
            await self._broker.delete_topic(lite.name)
        else:
            await self._broker.delete_topic(request.name)
        return api.DeleteTopicResponse()

    # -- groups ------------------------------------------------------------------------------

    async def _create_group(self, request: api.CreateGroupRequest, context: ServicerContext) -> Any:
        problem = name_problem("consumer group", request.name)
        if problem:
            raise InvalidArgument(problem)
        changes = with_fifo_default(settings_changes(request.settings), None)
        group = await self._broker.create_group(request.name, from_beginning=request.from_beginning)
        if changes:
            group = await self._broker.update_group(group.name, **changes)
        return group_message(group)

    async def _update_group(self, request: api.UpdateGroupRequest, context: ServicerContext) -> Any:
        current = self._broker.find_group(request.name)
        changes = with_fifo_default(settings_changes(request.settings, current), current)
        if not changes:
            raise InvalidArgument("nothing to change")
        return group_message(await self._broker.update_group(request.name, **changes))

    async def _describe_group(self, request: api.DescribeGroupRequest, context: ServicerContext) -> Any:
        name = request.name
        consumers = self._broker.clients.consumers(name)
        subscribed = {topic for c in consumers for topic in c.subscriptions}
        filters = group_filters(consumers)
        lite = self._broker.lite_subscribed(name).get(name, {})  # a lite parent's backlog is in its lite topics
        for parent, names in lite.items():
            subscribed |= names
            filters.update(dict.fromkeys(names, filters.get(parent)))

        found = await self._broker.describe_group(name, subscribed, filters)
        if found is None:
            raise NotFound(f"consumer group {name!r} does not exist")
        return api.GroupDescription(
            group=group_message(found.group),
            topics=group_progress(name, found.topics, lite, self._clock.now_ms()),
            consumers=consumer_messages(consumers),
        )

    async def _list_groups(self, request: api.ListGroupsRequest, context: ServicerContext) -> Any:
        return api.ListGroupsResponse(groups=[group_message(g) for g in self._broker.list_groups()])

    async def _delete_group(self, request: api.DeleteGroupRequest, context: ServicerContext) -> Any:
        await self._broker.delete_group(request.name)
        return api.DeleteGroupResponse()

    async def _reset_offset(self, request: api.ResetOffsetRequest, context: ServicerContext) -> Any:
        kind = request.WhichOneof("to")
        to: OffsetTarget
        if kind == "earliest":
            to = "earliest"
        elif kind == "latest":
            to = "latest"
        elif kind == "timestamp":
            to = millis(request.timestamp)
            if to < 0:
                raise InvalidArgument("a timestamp to reset to is at or after the epoch")
        else:
            raise InvalidArgument("say where to: earliest, latest or a timestamp")
        group = await self._broker.group(request.group)
        topic = await self._broker.topic(request.topic)
        progress = await self._broker.reset_offset(group, await self._reset_target(topic, request.lite_topic), to)
        return topic_progress(topic.name, group.name, progress, self._clock.now_ms())

    async def _reset_target(self, topic: TopicConfig, lite: str) -> TopicConfig:
        """Where a reset moves: the topic, or the named lite topic of a lite parent (the parent
        itself holds nothing, so resetting it would silently do nothing)."""
        if not is_lite_parent(topic):
            if lite:
                raise IllegalLiteTopic(f"topic {topic.name!r} is not a lite topic parent; "
                                       f"it has no lite topic {lite[:80]!r}")
            return topic
        if not lite:
            raise InvalidArgument(f"topic {topic.name!r} is a lite topic parent: name the lite topic to move in "
                                  "(lite_topic; the command's --lite)")
        found = await self._broker.lite_topic(topic, lite, create=False)
        if found is None:
            raise NotFound(f"topic {topic.name!r} has no lite topic {lite[:80]!r}")
        return found

    async def _resend_dead_letters(self, request: api.ResendDeadLettersRequest, context: ServicerContext) -> Any:
        if not request.message_ids:
            raise InvalidArgument("give at least one message id")
        group = await self._broker.group(request.group)
        result = await self._broker.resend_dead_letters(group, list(request.message_ids))
        return api.ResendDeadLettersResponse(messages=[
            api.ResentMessage(message_id=i, found=False) if (r := result.get(i)) is None else
            api.ResentMessage(message_id=i, found=True, topic=r.topic, queue_id=r.queue_id, offset=r.offset)
            for i in request.message_ids
        ])

    # -- the RPCs: rights each needs -----------------------------------------------------------

    async def CreateTopic(self, request: api.CreateTopicRequest, context: ServicerContext) -> Any:
        return await self._call("CreateTopic", request, context, self._create_topic,
                                lambda: [rights.topic(request.name, _CREATE)])

    async def UpdateTopic(self, request: api.UpdateTopicRequest, context: ServicerContext) -> Any:
        return await self._call("UpdateTopic", request, context, self._update_topic,
                                lambda: [rights.topic(request.name, _UPDATE)])

    async def DescribeTopic(self, request: api.DescribeTopicRequest, context: ServicerContext) -> Any:
        return await self._call("DescribeTopic", request, context, self._describe_topic,
                                lambda: [rights.topic(request.name, _GET)])

    async def ListTopics(self, request: api.ListTopicsRequest, context: ServicerContext) -> Any:
        return await self._call("ListTopics", request, context, self._list_topics,
                                lambda: [rights.cluster(_LIST)])

    async def topic_configs(self, context: ServicerContext) -> list[TopicConfig]:
        """ListTopics' rights and pipeline without building its response: the plain configs, for a
        caller that shows one page of them (the web console pages through 10,000 topics)."""
        async def configs(_: Any, __: ServicerContext) -> list[TopicConfig]:
            return [t for t in self._broker.list_topics() if split_lite_store_name(t.name) is None]

        result: list[TopicConfig] = await self._call("ListTopics", None, context, configs,
                                                     lambda: [rights.cluster(_LIST)])
        return result

    async def DeleteTopic(self, request: api.DeleteTopicRequest, context: ServicerContext) -> Any:
        return await self._call("DeleteTopic", request, context, self._delete_topic,
                                lambda: [rights.topic(request.name, _DELETE)])

    async def CreateGroup(self, request: api.CreateGroupRequest, context: ServicerContext) -> Any:
        return await self._call("CreateGroup", request, context, self._create_group,
                                lambda: [rights.group(request.name, _CREATE)])

    async def UpdateGroup(self, request: api.UpdateGroupRequest, context: ServicerContext) -> Any:
        return await self._call("UpdateGroup", request, context, self._update_group,
                                lambda: [rights.group(request.name, _UPDATE)])

    async def DescribeGroup(self, request: api.DescribeGroupRequest, context: ServicerContext) -> Any:
        return await self._call("DescribeGroup", request, context, self._describe_group,
                                lambda: [rights.group(request.name, _GET)])

    async def ListGroups(self, request: api.ListGroupsRequest, context: ServicerContext) -> Any:
        return await self._call("ListGroups", request, context, self._list_groups,
                                lambda: [rights.cluster(_LIST)])

    async def DeleteGroup(self, request: api.DeleteGroupRequest, context: ServicerContext) -> Any:
        return await self._call("DeleteGroup", request, context, self._delete_group,
                                lambda: [rights.group(request.name, _DELETE)])

    async def ResetOffset(self, request: api.ResetOffsetRequest, context: ServicerContext) -> Any:
        return await self._call("ResetOffset", request, context, self._reset_offset,
                                lambda: [rights.group(request.group, _UPDATE)])

    async def ResendDeadLetters(self, request: api.ResendDeadLettersRequest, context: ServicerContext) -> Any:
        return await self._call("ResendDeadLetters", request, context, self._resend_dead_letters,
                                lambda: [rights.group(request.group, _UPDATE)])
