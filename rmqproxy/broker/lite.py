"""Lite topics (RocketMQ 5.5, RIP-83): many light sub-topics inside one parent topic of type LITE.

Layout. A lite topic ``L`` of parent ``P`` is a one-queue topic of the store named
``%LMQ%$P$L`` (the reference calls these light message queues and names them the same way), made
on the first send to it. Clients never see that name: they name the parent and the lite topic
(SystemProperties.lite_topic, AckMessageEntry.lite_topic...), and deliveries show the parent.
Everything the store does for a queue (pop, retries, dead letters, offsets, retention, receipts
carrying the topic id) therefore works for a lite topic unchanged, on every backend, and a lite
topic costs only what a one-queue topic costs: a catalog entry and the keys of what was written to
it. Nothing runs per lite topic in the background here; receives only look at the lite topics
their client subscribed to (see :meth:`BrokerLite.pop_lite`).

Subscriptions (SyncLiteSubscription) are per client and consumer group, bound to one parent:
a set of lite topic names kept in memory (clients send their whole set again every 30 s with
COMPLETE_ADD, so a restarted server learns them back). A receive of the parent by a lite consumer
delivers only messages of the lite topics its client subscribed to.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rmqproxy.broker.consuming import BrokerConsuming
from rmqproxy.broker.errors import (
    IllegalLiteTopic,
    LiteSubscriptionQuotaExceeded,
    LiteTopicQuotaExceeded,
    StaleLiteSubscription,
)
from rmqproxy.broker.lite_subscriptions import LiteSubscription, LiteSubscriptions
from rmqproxy.lite_names import LITE_NAME, LITE_NAME_RULE, LMQ_PREFIX, lite_store_name, split_lite_store_name
from storage.base import EntryFilter, PopResult
from storage.errors import TopicExists, TopicNotFound
from storage.model import GroupConfig, TopicConfig, TopicType

EXPIRY_SLICE = 500
"""Lite topics one retention pass looks at, at most, for being empty and old (see _after_retention)."""


class LiteActions:
    """SyncLiteSubscriptionRequest.action (LiteSubscriptionAction), as plain ints."""

    PARTIAL_ADD = 0
    PARTIAL_REMOVE = 1
    COMPLETE_ADD = 2
    COMPLETE_REMOVE = 3


@dataclass(frozen=True)
class OffsetChoice:
    """SyncLiteSubscriptionRequest.offset_option, decoded: where a newly added lite topic starts."""

    policy: str | None = None
    """"LAST" (where the group is: nothing moves), "MIN" (first stored) or "MAX" (the end)."""
    offset: int | None = None
    tail_n: int | None = None
    timestamp_ms: int | None = None


class BrokerLite(BrokerConsuming):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lite_subscriptions = LiteSubscriptions()
        self._lite_counts: dict[str, int] = {}
        """parent -> how many lite topics it has (for the quota and ``topic describe``)."""
        self._lite_turn = itertools.count()
        self._expiry_round: list[str] = []
        """Store names of the lite topics the next retention passes look at (see _after_retention)."""
        self.notify_unsubscribe: Callable[[str, str, str, str], None] | None = None
        """(client id, group, parent, lite topic): tells a client the server dropped a lite
        subscription (NotifyUnsubscribeLiteCommand); set by the Telemetry handler."""

    async def load_catalog(self) -> None:
        await super().load_catalog()
        self._lite_counts = {}
        for name in self._topics:
            parsed = split_lite_store_name(name)
            if parsed is not None:
                self._lite_counts[parsed[0]] = self._lite_counts.get(parsed[0], 0) + 1

    async def refresh_catalog_entry(self, kind: str, name: str) -> None:
        had = name in self._topics
        await super().refresh_catalog_entry(kind, name)
        self._counted(name, had)

    async def _learn_topic(self, name: str) -> None:
        had = name in self._topics
        await super()._learn_topic(name)
        self._counted(name, had)

    def _counted(self, name: str, had: bool) -> None:
        """Keep the count of a parent's lite topics when another process made or deleted one."""
        parsed = split_lite_store_name(name)
        has = name in self._topics
        if parsed is not None and has != had:
            self._lite_counts[parsed[0]] = max(0, self.lite_count(parsed[0]) + (1 if has else -1))
            if not has:
                self.drop_lite_subscriptions(*parsed)

    def list_topics(self) -> list[TopicConfig]:
        """Every topic but the lite topics (``topic describe`` of their parent counts them)."""
        return [t for t in super().list_topics() if not t.name.startswith(LMQ_PREFIX)]

    def check_lite_name(self, lite: str) -> None:
        most = self.settings.max_lite_topic_size
        if not lite.strip():
            raise IllegalLiteTopic("the lite topic is blank")
        if len(lite.encode()) > most:
            raise IllegalLiteTopic(f"lite topic {lite[:80]!r} is longer than {most} bytes")
        if not LITE_NAME.fullmatch(lite):
            raise IllegalLiteTopic(f"lite topic {lite[:80]!r} may only hold {LITE_NAME_RULE}")

    def lite_count(self, parent: str) -> int:
        return self._lite_counts.get(parent, 0)

    def lite_topics_of(self, parent: str, after: str = "", limit: int = 100) -> list[TopicConfig]:
        """The parent's lite topics (store configs), by name, after ``after``: a page for admins."""
        prefix = lite_store_name(parent, "")
        names = sorted(n for n in self._topics if n.startswith(prefix) and n[len(prefix):] > after)
        return [self._topics[n] for n in names[:limit]]

    async def lite_topic(self, parent: TopicConfig, lite: str, *, create: bool) -> TopicConfig | None:
        """The lite topic's store topic; made on first use when ``create`` (LiteTopicQuotaExceeded
        once the parent has as many as the server allows)."""
        self.check_lite_name(lite)
        name = lite_store_name(parent.name, lite)
        topic = self._topics.get(name)
        if topic is not None or not create:
            if topic is None and self.sharing.shared:
                await self._learn_topic(name)
                topic = self._topics.get(name)
            return topic
        if self.lite_count(parent.name) >= self.settings.lite_topic_quota:
            raise LiteTopicQuotaExceeded(f"topic {parent.name!r} has {self.lite_count(parent.name)} lite topics; "
                                         f"the limit is {self.settings.lite_topic_quota}")
        try:
            topic = await self.create_topic(name, TopicType.LITE, 1)
        except TopicExists:
            await self._learn_topic(name)
            return self._topics[name]
        self._lite_counts[parent.name] = self.lite_count(parent.name) + 1
        return topic

    async def delete_topic(self, name: str) -> None:
        topic = self._topics.get(name)
        parsed = split_lite_store_name(name)
        if topic is not None and topic.type is TopicType.LITE and parsed is None:
            for child in self.lite_topics_of(name, limit=self.lite_count(name) + 1):
                await self.delete_topic(child.name)
        await super().delete_topic(name)
        if parsed is not None:
            parent, lite = parsed
            self._lite_counts[parent] = max(0, self.lite_count(parent) - 1)
            self.drop_lite_subscriptions(parent, lite)

    async def _after_retention(self) -> None:
        """Lite topics left with no message by retention, made longer than the retention ago, are
        deleted (their subscribers are told: NotifyUnsubscribeLiteCommand). Each pass looks at no
        more than EXPIRY_SLICE lite topics, taking them in turn, so a parent with 100,000 of them
        costs each pass the same small amount (and a lite topic is looked at again only after the
        others were)."""
        await super()._after_retention()
        if not self._expiry_round:  # a new round: every lite topic there is now, each once
            self._expiry_round = [n for n in self._topics if n.startswith(LMQ_PREFIX)]
        names, self._expiry_round = self._expiry_round[:EXPIRY_SLICE], self._expiry_round[EXPIRY_SLICE:]
        now = self._clock.now_ms()
        for name in names:
            topic = self._topics.get(name)
            if topic is None:
                continue
            retention = topic.retention_ms if topic.retention_ms is not None else self.settings.retention_ms
            if topic.created_ms + retention > now:
                continue
            try:
                queue = (await self._store.queue_offsets(topic.name))[0]
                if queue.min_offset >= queue.max_offset:
                    await self.delete_topic(topic.name)
            except TopicNotFound:
                continue

    def drop_lite_subscriptions(self, parent: str, lite: str) -> None:
        """The lite topic is gone: every client subscribed to it loses it, and is told so."""
        for client_id, group in self.lite_subscriptions.drop_lite(parent, lite):
            if self.notify_unsubscribe is not None:
                self.notify_unsubscribe(client_id, group, parent, lite)

    def _wake(self, topic: str, group: str | None = None, count: int | None = None) -> None:
        parsed = split_lite_store_name(topic)
        if parsed is None:
            super()._wake(topic, group, count)
            return
        # Receivers long-poll the parent (nobody waits on the lite topic's own name, and waking it
        # would leave state per lite topic behind), each for its own lite topics: every one of them
        # wakes (a count would wake receivers of the group that did not subscribe to this lite
        # topic in place of the one that did), and looks only where it is marked ready.
        self.lite_subscriptions.mark_ready(parsed[0], parsed[1], group)
        super()._wake(parsed[0], group, None)

    # -- subscriptions -----------------------------------------------------------------------

    async def sync_lite_subscription(self, client_id: str, group: GroupConfig, parent: TopicConfig, action: int,
                                     lite_topics: Iterable[str], version: int | None,
                                     offset: OffsetChoice | None) -> LiteSubscription:
        """Apply a SyncLiteSubscription; the client's subscription afterwards. One that carries a
        version older than the newest applied for the client and group arrived late (a client
        retried, or its requests crossed): StaleLiteSubscription, and nothing changes. A version
        equal to it (the periodic COMPLETE_ADD again) or none at all is applied."""
        names = set(lite_topics)
        for lite in names:
            self.check_lite_name(lite)
        applied = self.lite_subscriptions.applied_version(client_id, group.name)
        if version is not None and applied is not None and version < applied:
            raise StaleLiteSubscription(version, applied)
        sub = self.lite_subscriptions.get(client_id, group.name)
        if sub is None or sub.topic != parent.name:
            sub = LiteSubscription(parent.name)
        if action == LiteActions.PARTIAL_ADD:
            wanted = sub.lite_topics | names
        elif action == LiteActions.PARTIAL_REMOVE:
            wanted = sub.lite_topics - names
        elif action == LiteActions.COMPLETE_ADD:
            wanted = names
        else:  # COMPLETE_REMOVE: the client drops its whole subscription
            wanted = set()
        quota = self.settings.lite_subscription_quota
        if len(wanted) > quota:
            raise LiteSubscriptionQuotaExceeded(f"{len(wanted)} lite topics subscribed; the limit is {quota}")
        if offset is not None:
            for lite in sorted(wanted - sub.lite_topics):
                await self._start_lite(group, parent, lite, offset)
        added = self.lite_subscriptions.replace(client_id, group.name, parent.name, wanted, version)
        if added:
            self._wake(parent.name, group.name)  # their backlog is receivable now
        return self.lite_subscriptions.get(client_id, group.name) or LiteSubscription(parent.name)

    async def _start_lite(self, group: GroupConfig, parent: TopicConfig, lite: str, offset: OffsetChoice) -> None:
        """Move the group's position in a lite topic it starts to read (OffsetOption)."""
        topic = await self.lite_topic(parent, lite, create=False)
        if topic is None or offset.policy == "LAST":
            return  # nothing stored yet, or stay where the group is
        now = self._clock.now_ms()
        queue = (await self._store.queue_offsets(topic.name))[0]
        if offset.policy == "MIN":
            target = queue.min_offset
        elif offset.policy == "MAX":
            target = queue.max_offset
        elif offset.offset is not None:
            target = offset.offset
        elif offset.tail_n is not None:
            target = queue.max_offset - offset.tail_n
        elif offset.timestamp_ms is not None:
            target = await self._store.queue_offset_at(topic.name, 0, offset.timestamp_ms)
        else:
            return
        await self._store.commit_offset(group.name, topic.name, 0, max(queue.min_offset, min(target, queue.max_offset)),
                                        now)

    async def client_gone(self, client_id: str) -> None:
        await super().client_gone(client_id)
        self.lite_subscriptions.drop_client(client_id)

    def lite_subscribed(self, group: str | None = None) -> dict[str, dict[str, set[str]]]:
        """Group -> parent -> the store names of the lite topics the group's clients connected
        here subscribe to (only ``group`` when given): where backlog views look for a group's
        backlog under a lite parent."""
        found: dict[str, dict[str, set[str]]] = {}
        for (_, name), sub in self.lite_subscriptions.items():
            if group is None or name == group:
                found.setdefault(name, {}).setdefault(sub.topic, set()).update(
                    lite_store_name(sub.topic, lite) for lite in sub.lite_topics)
        return found

    # -- receiving ---------------------------------------------------------------------------

    async def _pop_for(self, group: GroupConfig, topic: TopicConfig, client_id: str, queue_ids: list[int],
                       max_messages: int, invisible_ms: int, accept: EntryFilter | None) -> PopResult:
        if topic.type is not TopicType.LITE or split_lite_store_name(topic.name) is not None:
            return await super()._pop_for(group, topic, client_id, queue_ids, max_messages, invisible_ms, accept)
        return await self.pop_lite(group, topic, client_id, max_messages, invisible_ms, accept)

    async def pop_lite(self, group: GroupConfig, parent: TopicConfig, client_id: str, max_messages: int,
                       invisible_ms: int, accept: EntryFilter | None) -> PopResult:
        """Pop from the lite topics the client subscribed to (and only those) that are marked ready
        (broker/lite_subscriptions.py), starting at a different one each time so that a busy lite
        topic does not starve the others."""
        subs = self.lite_subscriptions
        sub = subs.get(client_id, group.name)
        result = PopResult()
        if sub is None or sub.topic != parent.name or not sub.lite_topics:
            return result
        names = subs.candidates(parent.name, group.name, sub, trust_hints=not self.sharing.shared)
        start = next(self._lite_turn) % len(names) if names else 0
        for lite, mark in names[start:] + names[:start]:
            topic = self._topics.get(lite_store_name(parent.name, lite))
            if topic is None:
                subs.drained(parent.name, group.name, lite, mark)  # nothing was ever sent to it
                continue
            asked = max_messages - len(result)
            try:
                got = await self._pop(group.name, topic.name, [0], asked, invisible_ms, accept)
            except TopicNotFound:
                continue  # deleted meanwhile
            if len(got) < asked and not got.more:
                subs.drained(parent.name, group.name, lite, mark)
            result.extend(got)
            result.more = result.more or got.more
            if len(result) >= max_messages:
                break
        return result

