"""The admin API's conversions and checks (rmqproxy.admin.v1 messages to store configs and back,
retry policies, group settings, consumers' subscriptions), apart from the service that uses them
(rmqproxy/admin.py), so that the console and the tests can use them too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy.broker.clients import ClientSession
from rmqproxy.broker.retry import FIFO_DEFAULT_POLICY
from rmqproxy.convert import millis
from rmqproxy.errors import InvalidArgument, ProtocolError
from rmqproxy.filters import compile_filter
from rmqproxy.lite_names import split_lite_store_name
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from storage.base import EntryFilter
from storage.model import (
    CustomizedBackoff,
    ExponentialBackoff,
    GroupConfig,
    GroupQueueProgress,
    RetryPolicy,
    TopicType,
)

MAX_QUEUES = 256
MAX_RETRIES = 1000
MAX_DELAYS = 100

TOPIC_TYPES = {
    api.TOPIC_TYPE_UNSPECIFIED: TopicType.NORMAL,
    api.NORMAL: TopicType.NORMAL,
    api.FIFO: TopicType.FIFO,
    api.DELAY: TopicType.DELAY,
    api.TRANSACTION: TopicType.TRANSACTION,
    api.PRIORITY: TopicType.PRIORITY,
    api.LITE: TopicType.LITE,
}
API_TOPIC_TYPES = {TopicType.NORMAL: api.NORMAL, TopicType.FIFO: api.FIFO, TopicType.DELAY: api.DELAY,
              TopicType.TRANSACTION: api.TRANSACTION, TopicType.PRIORITY: api.PRIORITY,
              TopicType.LITE: api.LITE}
SUPPORTED_TYPES = frozenset({TopicType.NORMAL, TopicType.FIFO, TopicType.DELAY, TopicType.TRANSACTION,
                             TopicType.PRIORITY, TopicType.LITE})
"""Topic types whose message semantics this build implements."""


def timestamp_message(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def duration_message(ms: int) -> Duration:
    value = Duration()
    value.FromMilliseconds(ms)
    return value


def policy_message(policy: RetryPolicy) -> api.RetryPolicy:
    if isinstance(policy, CustomizedBackoff):
        delays = [duration_message(d) for d in policy.delays_ms]
        return api.RetryPolicy(customized=api.RetryPolicy.Customized(delays=delays))
    return api.RetryPolicy(exponential=api.RetryPolicy.Exponential(
        initial=duration_message(policy.initial_ms), max=duration_message(policy.max_ms), multiplier=policy.multiplier))


DEFAULT_EXPONENTIAL = ExponentialBackoff(initial_ms=1000, max_ms=2 * 3600_000, multiplier=2.0)
"""What an exponential policy's options left out are when the group's policy is not exponential yet."""


def policy_value(message: api.RetryPolicy, current: RetryPolicy | None = None) -> RetryPolicy | None:
    """The policy a request asks for (None: unchanged); InvalidArgument if it makes no sense.

    An exponential policy's fields left out (no initial, no max, multiplier 0) keep the values of
    ``current`` when that is exponential too, else take :data:`DEFAULT_EXPONENTIAL`: ``group update
    G --max 10s`` changes the cap and nothing else."""
    kind = message.WhichOneof("policy")
    if kind == "customized":
        delays = tuple(millis(d) for d in message.customized.delays)
        if not delays:
            return CustomizedBackoff()
        if len(delays) > MAX_DELAYS or any(d <= 0 for d in delays):
            raise InvalidArgument(f"a customized retry policy has 1 to {MAX_DELAYS} delays, each above 0")
        return CustomizedBackoff(delays)
    if kind == "exponential":
        exp = message.exponential
        base = current if isinstance(current, ExponentialBackoff) else DEFAULT_EXPONENTIAL
        initial = millis(exp.initial) if exp.HasField("initial") else base.initial_ms
        maximum = millis(exp.max) if exp.HasField("max") else base.max_ms
        multiplier = exp.multiplier or base.multiplier
        if initial <= 0 or maximum < initial or multiplier < 1:
            raise InvalidArgument("an exponential retry policy needs initial > 0, max >= initial and "
                                  "multiplier >= 1")
        return ExponentialBackoff(initial, maximum, multiplier)
    return None


def settings_changes(settings: api.GroupSettings, current: GroupConfig | None = None) -> dict[str, Any]:
    """What a create (``current`` None) or an update of ``current`` asks to change."""
    changes: dict[str, Any] = {}
    if settings.HasField("max_retries"):
        if not 0 <= settings.max_retries <= MAX_RETRIES:
            raise InvalidArgument(f"max retries must be between 0 and {MAX_RETRIES}")
        changes["max_retries"] = settings.max_retries
    policy = policy_value(settings.retry_policy, current.retry_policy if current is not None else None)
    if policy is not None:
        changes["retry_policy"] = policy
    if settings.HasField("consume_enabled"):
        changes["consume_enabled"] = settings.consume_enabled
    if settings.HasField("fifo"):
        changes["fifo"] = settings.fifo
    return changes


def with_fifo_default(changes: dict[str, Any], current: GroupConfig | None) -> dict[str, Any]:
    """A group that becomes FIFO without a retry policy of its own gets the short FIFO default (and
    goes back to RocketMQ's default levels if it stops being FIFO with the FIFO default)."""
    if "fifo" not in changes or "retry_policy" in changes:
        return changes
    policy = current.retry_policy if current is not None else CustomizedBackoff()
    if changes["fifo"] and policy == CustomizedBackoff():
        return {**changes, "retry_policy": FIFO_DEFAULT_POLICY}
    if not changes["fifo"] and policy == FIFO_DEFAULT_POLICY:
        return {**changes, "retry_policy": CustomizedBackoff()}
    return changes


def group_message(group: GroupConfig) -> api.Group:
    return api.Group(name=group.name, created=timestamp_message(group.created_ms), from_beginning=group.from_beginning,
                     max_retries=group.max_retries, retry_policy=policy_message(group.retry_policy),
                     consume_enabled=group.consume_enabled, fifo=group.fifo)


def topic_progress(topic: str, group: str, queues: list[GroupQueueProgress], now_ms: int) -> api.TopicProgress:
    oldest_ready = min((q.oldest_ready_ms for q in queues if q.oldest_ready_ms is not None), default=None)
    oldest_inflight = min((q.oldest_inflight_ms for q in queues if q.oldest_inflight_ms is not None), default=None)
    message = api.TopicProgress(
        topic=topic, group=group,
        queues=[api.QueueProgress(queue_id=q.queue_id, min_offset=q.min_offset, max_offset=q.max_offset,
                                  committed_offset=q.committed_offset, next_offset=q.next_offset, ready=q.ready,
                                  inflight=q.inflight, retry_ready=q.retry_ready, retrying=q.retrying,
                                  dead_lettered=q.dead_lettered, waiting=q.waiting) for q in queues],
        ready=sum(q.ready for q in queues),
        inflight=sum(q.inflight for q in queues),
        retrying=sum(q.retrying for q in queues),
        dead_lettered=sum(q.dead_lettered for q in queues),
    )
    if oldest_ready is not None:
        message.oldest_ready_age.CopyFrom(duration_message(max(0, now_ms - oldest_ready)))
    if oldest_inflight is not None:
        message.oldest_inflight_age.CopyFrom(duration_message(max(0, now_ms - oldest_inflight)))
    return message


def group_progress(group: str, topics: Sequence[tuple[str, list[GroupQueueProgress]]],
                   lite: Mapping[str, set[str]], now_ms: int) -> list[api.TopicProgress]:
    """A group's progress per topic, by name. A lite parent's row sums the group's progress in
    the lite topics its online consumers subscribe to (``lite``: parent -> their store names): one
    row per parent, never one per lite topic (a parent may have a million); lite topics nobody of
    the group subscribes to now are left out."""
    parent_of = {name: parent for parent, names in lite.items() for name in names}
    summed: dict[str, list[GroupQueueProgress]] = {parent: [] for parent in lite}
    rows = []
    for topic, queues in topics:
        if topic in parent_of:
            summed[parent_of[topic]] += queues
        elif topic not in lite and split_lite_store_name(topic) is None:
            rows.append(topic_progress(topic, group, queues, now_ms))
    for parent, queues in summed.items():
        row = topic_progress(parent, group, queues, now_ms)
        del row.queues[:]  # each lite topic's one queue: nothing an operator could act on, row by row
        row.lite_topics = len(lite[parent])
        rows.append(row)
    return sorted(rows, key=lambda row: row.topic)


def inconsistent(subscriptions: list[frozenset[tuple[str, str]]]) -> list[bool]:
    """Which consumers subscribe differently from the others (RocketMQ expects every consumer of a
    group to subscribe alike): everyone outside the one most common subscription, or everyone if
    no subscription is the most common on its own."""
    shapes = Counter(subscriptions)
    if len(shapes) <= 1:
        return [False] * len(subscriptions)
    (usual, count), (_, runner_up) = shapes.most_common(2)
    return [count == runner_up or shape != usual for shape in subscriptions]


def group_filters(consumers: list[ClientSession]) -> dict[str, EntryFilter | None]:
    """Per topic, the filter most of the group's online consumers declared: messages it rejects are
    consumed for the group, so they do not count as its backlog."""
    declared: dict[str, Counter[tuple[int, str]]] = {}
    for consumer in consumers:
        for topic, spec in consumer.filters.items():
            declared.setdefault(topic, Counter())[spec] += 1
    result: dict[str, EntryFilter | None] = {}
    for topic, counts in declared.items():
        filter_type, expression = counts.most_common(1)[0][0]
        try:
            result[topic] = compile_filter(filter_type, expression)
        except ProtocolError:
            result[topic] = None
    return result


def consumer_messages(consumers: list[ClientSession]) -> list[api.Consumer]:
    ordered = sorted(consumers, key=lambda c: c.client_id)
    flags = inconsistent([frozenset(c.subscriptions.items()) for c in ordered])
    return [
        api.Consumer(client_id=c.client_id, address=c.address, language=c.language, client_version=c.version,
                     client_type=c.client_type, last_heartbeat=timestamp_message(c.last_heartbeat_ms or c.last_seen_ms),
                     subscriptions=c.subscriptions, inconsistent_subscription=flag,
                     client_properties=c.properties)
        for c, flag in zip(ordered, flags, strict=True)
    ]
