"""The broker's background loops. Each sleeps on an :class:`~rmqproxy.broker.alarm.Alarm` until
the next thing it must do falls due, as the store reported it, or until someone asks for an
earlier wake-up; none polls.

* revive: makes expired deliveries receivable again (or dead-letters them) and wakes receivers;
* renew: extends auto-renewed deliveries shortly before they fall due;
* sweep: every few seconds, treats silent clients without a Telemetry stream as gone;
* retention: every so often, deletes messages older than their topic's retention;
* timers: appends scheduled messages that fell due to their queues and wakes receivers;
* transaction checks: asks a live producer about half messages left unresolved, on schedule, and
  rolls a half message back once its checks are used up.

Revive, retention, timers and transaction checks act on the shared store, so with several
processes sharing it (``serve --workers``, several nodes) each runs in one process at a time: the
one holding its lease in the store (``acquire_lease``, renewed every third of LEASE_TTL_MS). The
others pass their early wake-ups on as notices (broker/alarm.py, SharedAlarm). If the holder dies
its lease runs out and another process takes the job over within LEASE_TTL_MS and a third. The
store's operations are atomic, so even two holders at once (a store restarted under a running
holder) fire a timer or revive a delivery once. Renewals and the sweep are each process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from rmqproxy.broker.alarm import sleep_until
from rmqproxy.broker.clients import ClientSession
from rmqproxy.broker.core import REVIVE_BATCH, SWEEP_INTERVAL_MS
from rmqproxy.broker.pulling import BrokerPulling
from rmqproxy.broker.renewal import Renewal
from storage.errors import StoreClosed, StoreError, TopicNotFound, TransactionNotFound
from storage.model import HalfMessage, HeldDelivery

log = logging.getLogger("rmqproxy.broker")

RESTART_DELAY_MS = 1_000
LEASE_TTL_MS = 6_000
LEASED = frozenset({"revive", "retention", "timers", "transaction checks"})


class BrokerBackground(BrokerPulling):
    def _loops(self) -> dict[str, Callable[[], Awaitable[None]]]:
        return {"revive": self._revive_loop, "renew": self._renew_loop, "sweep": self._sweep_loop,
                "retention": self._retention_loop, "timers": self._timer_loop,
                "transaction checks": self._check_loop}

    def _background(self, name: str, loop: Callable[[], Awaitable[None]]) -> Coroutine[Any, Any, None]:
        """The task running a background loop: under its lease when the store is shared."""
        if name in LEASED and self.sharing.shared:
            return self._under_lease(name, loop)
        return self._forever(name, loop)

    async def _under_lease(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run ``loop`` while this process holds lease ``name``; try for it every third of its TTL."""
        holder = self.sharing.worker_id
        alarm = {"revive": self._revive_alarm, "timers": self._timer_alarm,
                 "transaction checks": self._check_alarm}.get(name)
        job: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    held = await self._store.acquire_lease(name, holder, LEASE_TTL_MS, self._clock.now_ms())
                except StoreError as exc:
                    log.warning("cannot renew the lease of %s: %s", name, exc)
                    held = False
                if held and job is None:
                    log.info("this process runs %s now (it holds the lease)", name)
                    if alarm is not None:
                        alarm.held = True
                    job = asyncio.create_task(self._forever(name, loop))
                elif not held and job is not None:
                    log.info("another process runs %s now", name)
                    if alarm is not None:
                        alarm.held = False
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await job
                    job = None
                await sleep_until(self._clock, self._clock.now_ms() + LEASE_TTL_MS // 3)
        finally:
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._store.release_lease(name, holder))

    async def _forever(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop; an unexpected error is logged and the loop restarts."""
        while True:
            try:
                await loop()
            except StoreClosed as exc:  # the store is gone or going: one line, not a traceback each second
                log.error("background task %s stopped: %s; restarting it in 1 s", name, exc)
                await sleep_until(self._clock, self._clock.now_ms() + RESTART_DELAY_MS)
            except Exception:
                log.exception("background task %s failed; restarting it in 1 s", name)
                await sleep_until(self._clock, self._clock.now_ms() + RESTART_DELAY_MS)

    async def _revive_loop(self) -> None:
        while True:
            self._revive_alarm.begin()
            # Each group's delivery limit as it stands now.
            limits = {name: group.max_attempts for name, group in self._groups.items()}
            now = self._clock.now_ms()
            result = await self._store.revive_expired(now, REVIVE_BATCH, limits)
            receivable: dict[tuple[str, str | None], int] = {}
            for r in result.revived:
                if r.dead_letter_topic:
                    self.trace.event(r.topic, (r.queue_id, r.offset), "DEAD_LETTERED", now, group=r.group,
                                     attempt=r.attempt, detail=f"attempts used up, to {r.dead_letter_topic}")
                else:
                    self.trace.event(r.topic, (r.queue_id, r.offset), "RETRY_SCHEDULED", now, group=r.group,
                                     attempt=r.attempt)
                # A redelivery is for its group; a dead letter for whoever reads the DLQ topic.
                key = (r.dead_letter_topic, None) if r.dead_letter_topic else (r.topic, r.group)
                receivable[key] = receivable.get(key, 0) + 1
            for (topic, for_group), count in receivable.items():
                await self._learn_topic(topic)
                self._wake(topic, for_group, count=count)
            dead = [r for r in result.revived if r.dead_letter_topic]
            for r in dead:
                self.events.dead_lettered(r.group, r.topic, 1)
            if dead:
                log.info("dead-lettered %d message(s) whose delivery attempts were used up", len(dead))
            if len(result.revived) >= REVIVE_BATCH:
                continue
            await self._revive_alarm.sleep(result.next_due_ms)

    async def _renew_loop(self) -> None:
        margin = self.settings.auto_renew_margin_ms
        while True:
            self._renew_alarm.begin()
            now = self._clock.now_ms()
            due = self.renewals.due(now + margin)
            if due:
                await self._renew(due)
                continue
            next_at = self.renewals.next_visible_at()
            await self._renew_alarm.sleep(None if next_at is None else next_at - margin)

    async def _renew(self, due: list[Renewal]) -> None:
        deliveries = [HeldDelivery(r.group, r.topic, r.receipt) for r in due]
        renewed = await self._store.renew(deliveries, self.settings.auto_renew_invisible_ms, self._clock.now_ms())
        for renewal, visible_at in zip(due, renewed, strict=True):
            if visible_at is None:
                self.renewals.discard(renewal.receipt)
            else:
                self.renewals.renewed(renewal, visible_at)

    async def _retention_loop(self) -> None:
        interval = max(1_000, min(self.settings.retention_check_ms, self.settings.retention_ms // 4))
        while True:
            await sleep_until(self._clock, self._clock.now_ms() + interval)
            # A store may delete a bounded number per call (RocksDB reads each message's index
            # entries to delete them): call again until nothing is left, other calls in between.
            while deleted := await self._store.delete_expired(self._clock.now_ms(), self.settings.retention_ms):
                log.info("retention deleted %d message(s)", deleted)
            await self._after_retention()

    async def _timer_loop(self) -> None:
        while True:
            self._timer_alarm.begin()
            now = self._clock.now_ms()
            result = await self._store.fire_timers(now, REVIVE_BATCH)
            counts: dict[str, int] = {}
            for fired in result.fired:
                self.trace.stored(fired.topic, fired.queue_id, fired.offset, "scheduled message fell due", now)
                counts[fired.topic] = counts.get(fired.topic, 0) + 1
            for topic, count in counts.items():
                self._wake(topic, count=count)
            if len(result.fired) >= REVIVE_BATCH:
                continue
            await self._timer_alarm.sleep(result.next_due_ms)

    async def _check_loop(self) -> None:
        """Ask producers about half messages nobody resolved (first after their check time, then
        every interval); roll back those whose checks are used up. Half messages of a topic with no
        producer online wait, uncounted, until one connects."""
        interval, most = self.settings.transaction_check_interval_ms, self.settings.transaction_max_checks
        while True:
            self._check_alarm.begin()
            now = self._clock.now_ms()
            for topic, waiting in list(self._awaiting_producer.items()):
                if waiting and self._producer_for(topic) is not None:
                    self._awaiting_producer.pop(topic)
                    for transaction, checks in waiting.items():
                        with contextlib.suppress(TransactionNotFound, TopicNotFound):
                            await self._store.reschedule_check(topic, transaction, now, checks)
            due, next_at = await self._store.due_checks(now, REVIVE_BATCH)
            if due:  # each one handled below is rescheduled one interval on
                next_at = now + interval if next_at is None else min(next_at, now + interval)
            for half in due:
                try:
                    if half.checks >= most:
                        await self._store.end_transaction(half.topic, half.transaction_id, False, now)
                        self.events.transaction_ended(half.topic, False)
                        log.info("rolled back transaction %d of topic %s after %d unanswered checks",
                                 half.transaction_id, half.topic, half.checks)
                        continue
                    producer = self._producer_for(half.topic)
                    checks = half.checks
                    if producer is None:
                        self._awaiting_producer.setdefault(half.topic, {})[half.transaction_id] = checks
                    elif producer.worker is not None:  # connected to another process: it asks
                        self.sharing.post("check", (producer.worker, producer.client_id, half))
                        checks += 1
                    elif self._ask_producer is not None:
                        self._ask_producer(producer, half)
                        checks += 1
                    await self._store.reschedule_check(half.topic, half.transaction_id, now + interval, checks)
                except (TransactionNotFound, TopicNotFound):
                    continue  # resolved meanwhile
            if len(due) >= REVIVE_BATCH:
                continue
            await self._check_alarm.sleep(next_at)

    def _tell_others(self, session: ClientSession) -> None:
        """Tell the other processes about a client whose Telemetry stream is here (a session made
        by a mere call, without settings, says nothing they need)."""
        if session.streams or session.settings is not None:
            self.sharing.post("client", session.summary())

    def _producer_for(self, topic: str) -> ClientSession | None:
        """A live producer of the topic to ask about a half message (a different one each time)."""
        candidates = [s for s in self.clients.all() if s.client_type == "PRODUCER" and topic in s.topics
                      and (s.streams or s.connected)]
        if not candidates:
            return None
        return candidates[next(self._check_turn) % len(candidates)]

    def on_transaction_check(self, ask: Callable[[ClientSession, HalfMessage], None]) -> None:
        """Register how to ask a producer about a half message (the protocol layer sends a
        RecoverOrphanedTransactionCommand on its Telemetry stream)."""
        self._ask_producer = ask

    def producers_online(self, topics: frozenset[str]) -> None:
        """A producer of these topics connected: half messages waiting for one are checked now."""
        if any(self._awaiting_producer.get(t) for t in topics):
            self._check_alarm.wake()

    async def _sweep_loop(self) -> None:
        while True:
            await sleep_until(self._clock, self._clock.now_ms() + SWEEP_INTERVAL_MS)
            for client_id in self.clients.expired(self._clock.now_ms()):
                await self.client_gone(client_id)
            if self.sharing.shared:  # refresh what the others know of our clients; forget the silent
                for session in self.clients.local():
                    self._tell_others(session)
                self.clients.forget_stale(self._clock.now_ms() - 4 * SWEEP_INTERVAL_MS)
