"""The broker's consumption policy: long-polling receives, acknowledgements, changes of
invisibility, dead letters on request, and giving back what a departed client held."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence

from rmqproxy.broker.catalog import BrokerCatalog
from rmqproxy.broker.core import SCAN_LIMIT, Attempt
from rmqproxy.broker.errors import ConsumeDisabled
from rmqproxy.broker.priority import priority_order
from rmqproxy.broker.renewal import Renewal
from storage.base import EntryFilter, PopResult
from storage.errors import StoreError, TopicNotFound
from storage.model import (
    DeadLettered,
    Delivery,
    GroupConfig,
    GroupQueueProgress,
    OffsetTarget,
    Popped,
    Receipt,
    Resent,
    TopicConfig,
    TopicType,
)

log = logging.getLogger("rmqproxy.broker")

AttemptKey = tuple[str, str, str, str]


class BrokerConsuming(BrokerCatalog):
    async def receive(
        self,
        group: GroupConfig,
        topic: TopicConfig,
        *,
        client_id: str,
        max_messages: int,
        invisible_ms: int | None,
        poll_ms: int,
        accept: EntryFilter | None = None,
        queue_id: int | None = None,
        attempt_id: str | None = None,
    ) -> list[Popped]:
        """Deliver up to ``max_messages``, waiting up to ``poll_ms`` for the first to arrive.

        ``invisible_ms`` None means auto-renew: the server picks the invisible duration and keeps
        extending it while the client lives. ``queue_id`` limits the receive to one queue (FIFO push
        consumers read the queues assigned to them); otherwise every queue is visited. A receive
        retried with the same ``attempt_id`` (its answer was lost) gets the same messages again."""
        if not group.consume_enabled:
            raise ConsumeDisabled(group.name)
        auto_renew = invisible_ms is None
        invisible = self.settings.auto_renew_invisible_ms if invisible_ms is None else invisible_ms
        lite = topic.type is TopicType.LITE  # a parent of lite topics: broker/lite.py
        attempt_key = (client_id, group.name, topic.name, attempt_id) if attempt_id else None
        if attempt_key is not None and attempt_key in self._attempts:
            again = await self._repeat_attempt(attempt_key, invisible)
            if again:
                return again
        give_up_at = self._clock.now_ms() + poll_ms
        if queue_id is not None:
            queue_ids = [queue_id]
        elif topic.type is TopicType.PRIORITY:
            # Counted per group, apart from the send side's round robin of the topic (a name
            # no topic can have), so each group's lower priorities get their turns.
            turns = self._queue_turn.setdefault(f"%PRIORITY%{topic.name}%{group.name}", itertools.count())
            queue_ids = priority_order(topic.queues, next(turns))
        else:
            turn = self._queue_turn.setdefault(topic.name, itertools.count())
            start = next(turn) % topic.queues
            queue_ids = [(start + i) % topic.queues for i in range(topic.queues)]
        # Gathering (broker/longpoll.py) is for plain receives of the whole topic: a filter, a
        # FIFO group or an assigned queue may leave behind what a gatherer does not take.
        may_gather = (max_messages > 1 and accept is None and not group.fifo and queue_id is None
                      and self.settings.receive_gather_ms > 0 and not lite)
        if not may_gather:
            return await self._receive(group, topic, client_id, max_messages, invisible, auto_renew, give_up_at,
                                       queue_ids, accept, attempt_key, False, lite)
        with self.waiters.receiving(topic.name, group.name):
            return await self._receive(group, topic, client_id, max_messages, invisible, auto_renew, give_up_at,
                                       queue_ids, accept, attempt_key, True, lite)

    async def _receive(self, group: GroupConfig, topic: TopicConfig, client_id: str, max_messages: int,
                       invisible: int, auto_renew: bool, give_up_at: int, queue_ids: list[int],
                       accept: EntryFilter | None, attempt_key: AttemptKey | None, may_gather: bool,
                       lite: bool = False) -> list[Popped]:
        gathered = False
        while True:
            current = self.find_group(group.name)
            if current is not None and not current.consume_enabled:
                # Paused while this long poll waited: what arrives now must not go out.
                raise ConsumeDisabled(group.name)
            seen = self.waiters.version(topic.name, group.name)
            if may_gather and not gathered and self.waiters.gathering(topic.name, group.name):
                # Another receive of the group is collecting what arrives: let it have it, and wait
                # (it wakes us if it leaves anything behind).
                popped = PopResult()
            else:
                popped = await self._pop_for(group, topic, client_id, queue_ids, max_messages, invisible, accept)
                if gathered and (len(popped) >= max_messages or popped.more):
                    self.waiters.notify(topic.name, group.name, 1)  # there may be more: whoever waits, look
                gathered = False
            if not popped and popped.more:
                continue  # the filter skipped a slice of backlog: look further at once
            if popped:
                if auto_renew:
                    for p in popped:
                        self.renewals.add(Renewal(client_id, group.name, p.message.topic, p.receipt, p.visible_at_ms))
                    self._renew_alarm.wake_at(min(p.visible_at_ms for p in popped)
                                              - self.settings.auto_renew_margin_ms)
                self._revive_alarm.wake_at(min(p.visible_at_ms for p in popped))
                if attempt_key is not None:
                    self._remember_attempt(attempt_key, popped, invisible, lite)
                self.events.delivered(group.name, topic.name, popped)
                session = self.clients.get(client_id)
                by_topic = {topic.name: popped} if not lite else _by_topic(popped)  # lite: where each was stored
                for name, delivered in by_topic.items():
                    self.trace.delivered(group.name, name, delivered, client_id, session.address if session else "",
                                         self._clock.now_ms())
                return popped
            if self._clock.now_ms() >= give_up_at:
                return []
            wait_until = self._recheck_by(give_up_at)
            try:
                async with self._clock.deadline(wait_until):
                    await self.waiters.wait(topic.name, group.name, seen)
            except TimeoutError:
                if wait_until >= give_up_at:
                    return []
                continue  # time to look in the store again: a wake notice may have been lost
            if may_gather:
                gathered = await self._gather(topic.name, group.name, max_messages - 1, give_up_at)

    async def _gather(self, topic: str, group: str, room: int, give_up_at: int) -> bool:
        """Woken by an arrival: on a busy topic, hold on up to ``receive_gather_ms`` (or until
        ``room`` more messages arrived) so they go out in this answer (see broker/longpoll.py).
        Whether it gathered (False: another receive of the group is, or the topic is quiet)."""
        window = self.settings.receive_gather_ms
        if not self.waiters.busy(topic, window):
            return False
        gathering = self.waiters.gather(topic, group, room)
        if gathering is None:
            return False
        answered = False
        try:
            async with self._clock.deadline(min(self._clock.now_ms() + window, give_up_at)):
                await gathering.future
            answered = True
        except TimeoutError:
            answered = True
        finally:
            self.waiters.end_gather(gathering, answered=answered)
        return True

    def _recheck_by(self, give_up_at: int) -> int:
        """Until when a long poll waits before it looks in the store again: over a shared store
        no longer than ``shared_recheck_ms``, the bound on what a lost wake notice can cost."""
        if not self.sharing.shared:
            return give_up_at
        return min(give_up_at, self._clock.now_ms() + self.settings.shared_recheck_ms)

    def _remember_attempt(self, key: AttemptKey, popped: list[Popped], invisible_ms: int, lite: bool = False) -> None:
        """Keep what a receive with an attempt id delivered, until it would have expired anyway
        (``lite``: a lite parent's receive, whose deliveries come from its lite topics)."""
        now = self._clock.now_ms()
        while self._attempts:
            oldest = next(iter(self._attempts))
            if self._attempts[oldest].forget_at_ms > now:
                break
            del self._attempts[oldest]
        self._attempts[key] = Attempt(now + invisible_ms, [Delivery(p.receipt, p.attempt) for p in popped],
                                      [p.message.topic for p in popped] if lite else [])
        self.sharing.post("attempt", (key, self._attempts[key]))  # the retry may land on another process

    async def _repeat_attempt(self, key: AttemptKey, invisible_ms: int) -> list[Popped]:
        """The messages an earlier receive with this attempt id delivered that are still in flight
        (their invisibility is extended as if freshly received)."""
        remembered = self._attempts.pop(key)
        group, topic = key[1], key[2]
        now = self._clock.now_ms()
        if not remembered.topics:
            again = await self._store.redeliver(group, topic, remembered.deliveries, invisible_ms, now)
        else:  # a lite parent's: each lite topic's deliveries from that lite topic
            by_topic: dict[str, list[Delivery]] = {}
            for name, delivery in zip(remembered.topics, remembered.deliveries, strict=True):
                by_topic.setdefault(name, []).append(delivery)
            again = []
            for name, deliveries in by_topic.items():
                try:
                    again += await self._store.redeliver(group, name, deliveries, invisible_ms, now)
                except TopicNotFound:
                    continue  # the lite topic was deleted meanwhile: nothing of it is in flight
        if again:
            self._attempts[key] = Attempt(now + invisible_ms, [Delivery(p.receipt, p.attempt) for p in again],
                                          [p.message.topic for p in again] if remembered.topics else [])
        return again

    def fifo_assignment(self, group: str, topic: TopicConfig, client_id: str) -> list[int]:
        """The queues of ``topic`` a FIFO group's push consumer should read: the queues are dealt
        round robin over the group's push consumers subscribed to the topic (by client id), so
        they share the work. Consumers beyond the number of queues get none and wait."""
        consumers = {c.client_id for c in self.clients.consumers(group)
                     if c.client_type == "PUSH_CONSUMER" and topic.name in c.subscriptions}
        ordered = sorted(consumers | {client_id})
        index = ordered.index(client_id)
        return list(range(index, topic.queues, len(ordered)))

    async def _pop_for(self, group: GroupConfig, topic: TopicConfig, client_id: str, queue_ids: list[int],
                       max_messages: int, invisible_ms: int, accept: EntryFilter | None) -> PopResult:
        """One look in the store for a receive (broker/lite.py looks in a client's lite topics)."""
        return await self._pop(group.name, topic.name, queue_ids, max_messages, invisible_ms, accept)

    async def _pop(self, group: str, topic: str, queue_ids: list[int], max_messages: int, invisible_ms: int,
                   accept: EntryFilter | None) -> PopResult:
        """Pop from the store. If the caller is cancelled meanwhile (client gone, deadline),
        whatever was popped for it is released at once instead of waiting out its invisibility."""
        task = asyncio.ensure_future(self._store.pop(
            group, topic, queue_ids, max_messages, invisible_ms, self._clock.now_ms(), accept, SCAN_LIMIT))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            def release_orphans(done: asyncio.Future[PopResult]) -> None:
                if not done.cancelled() and done.exception() is None and done.result():
                    self.spawn(self.release(group, topic, [p.receipt for p in done.result()]))
            task.add_done_callback(release_orphans)
            raise

    async def release(self, group: str, topic: str, receipts: Sequence[Receipt]) -> None:
        """Make deliveries visible again now (the consumer will not process them)."""
        for receipt in receipts:
            self.renewals.discard(receipt)
        now = self._clock.now_ms()
        await self._store.release(group, topic, list(receipts), now)
        self._revive_alarm.wake_at(now)

    async def ack(self, group: GroupConfig, topic: TopicConfig,
                  receipts: Sequence[Receipt]) -> list[StoreError | None]:
        """Acknowledge deliveries; per receipt, None or the error that refused it."""
        for receipt in receipts:
            self.renewals.discard(receipt)
        results = await self._store.ack_each(group.name, topic.name, list(receipts), self._clock.now_ms())
        acked = sum(1 for r in results if r is None)
        self.events.acked(group.name, topic.name, acked)
        now = self._clock.now_ms()
        for receipt, refused in zip(receipts, results, strict=True):
            if refused is None:
                self.trace.event(topic.name, receipt, "ACKED", now, group=group.name)
        if group.fifo and acked:
            # An ack frees its message group: receivers long-polling for it can have the next one.
            self._wake(topic.name, group.name, count=acked)
        return results

    async def change_invisibility(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                                  invisible_ms: int, *, suspend: bool = False) -> Receipt:
        """The client sets the delivery's invisible duration itself (and so stops auto-renewal);
        with ``suspend`` the delivery does not count as an attempt (ChangeInvisibleDuration.suspend)."""
        if self.renewals.get(receipt) is None:
            self.sharing.post("unrenew", receipt)  # received through another process, which renews it
        self.renewals.discard(receipt)
        now = self._clock.now_ms()
        new = await self._store.change_invisibility(group.name, topic.name, receipt, invisible_ms, now,
                                                    suspend=suspend)
        suspended = " (suspended: not counted as an attempt)" if suspend else ""
        self.trace.event(topic.name, receipt, "INVISIBILITY_CHANGED", now, group=group.name,
                         detail=f"visible again in {invisible_ms} ms{suspended}")
        self._revive_alarm.wake_at(now + invisible_ms)
        return new

    async def dead_letter(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                          attempts: int | None = None) -> DeadLettered:
        """Move a delivered message to the group's dead-letter topic at the client's request;
        ``attempts``: how often the client says it tried (its local retries included)."""
        self.renewals.discard(receipt)
        target = await self._store.dead_letter(group.name, topic.name, receipt, self._clock.now_ms(), attempts)
        await self._learn_topic(target.topic)
        self.events.dead_lettered(group.name, topic.name, 1)
        self.trace.event(topic.name, receipt, "DEAD_LETTERED", self._clock.now_ms(), group=group.name,
                         detail=f"at the consumer's request, to {target.topic}")
        self._wake(target.topic, count=1)
        if group.fifo:
            self._wake(topic.name, group.name, count=1)  # the message group moves on
        return target

    async def resend_dead_letters(self, group: GroupConfig, message_ids: Sequence[str]) -> dict[str, Resent | None]:
        now = self._clock.now_ms()
        result = await self._store.resend_dead_letters(group.name, list(message_ids), now)
        for resent in result.values():
            if resent is not None:
                self.trace.event(resent.topic, (resent.queue_id, resent.offset), "RESENT", now, group=group.name,
                                 detail="from the dead-letter topic, for this group only")
        for topic in {r.topic for r in result.values() if r is not None}:
            self._wake(topic, group.name)
        return result

    async def reset_offset(self, group: GroupConfig, topic: TopicConfig,
                           to: OffsetTarget) -> list[GroupQueueProgress]:
        progress = await self._store.reset_offset(group.name, topic.name, to, self._clock.now_ms())
        self._wake(topic.name, group.name)
        return progress

    async def client_gone(self, client_id: str) -> None:
        """A client shut down or vanished: give back the deliveries the server renewed for it."""
        self.clients.remove(client_id)
        self.sharing.post("gone", client_id)
        await self.release_renewed(client_id)

    async def release_renewed(self, client_id: str) -> None:
        """Give back the deliveries renewed here for a client that went away."""
        held = self.renewals.take_client(client_id)
        by_queue: dict[tuple[str, str], list[Receipt]] = {}
        for renewal in held:
            by_queue.setdefault((renewal.group, renewal.topic), []).append(renewal.receipt)
        for (group, topic), receipts in by_queue.items():
            await self.release(group, topic, receipts)
        if held:
            log.info("client %s went away; released %d in-flight messages", client_id, len(held))


def _by_topic(popped: list[Popped]) -> dict[str, list[Popped]]:
    """A lite parent's deliveries by the lite topic each is stored in."""
    grouped: dict[str, list[Popped]] = {}
    for p in popped:
        grouped.setdefault(p.message.topic, []).append(p)
    return grouped
