"""The Redis Cluster store's appends, reads, scheduled messages and half messages.

An append is one script per queue (its batches grouped by queue, in order). The jobs that scan
every queue (firing timers, finding due checks) first look at each queue's due set in one
pipeline, take the earliest ``limit`` across queues, then change each queue that has some in one
script of its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from storage.errors import QueueNotFound, TimerNotFound, TransactionNotFound
from storage.model import (
    AppendBatch,
    AppendOutcome,
    DueChecks,
    Fired,
    FireResult,
    HalfMessage,
    HalfStats,
    Prepared,
    QueueOffsets,
    Scheduled,
    Stored,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TransactionEnd,
)
from storage.redis.core import RedisCore
from storage.redis.layout import (
    decode_body,
    encode_body,
    encode_entry,
    held_id,
    split_held,
    split_held_id,
    stored_message,
)


class RedisMessages(RedisCore):
    async def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[AppendOutcome]]:
        topics = {name: await self._topic(name) for name in sorted({b.topic for b in batches})}
        for batch in batches:
            if not 0 <= batch.queue_id < topics[batch.topic].queues:
                raise QueueNotFound(batch.topic, batch.queue_id)
        results: list[list[AppendOutcome]] = []
        for batch in batches:
            topic = topics[batch.topic]
            args: list[object] = [now_ms]
            kinds: list[tuple[str, int]] = []
            for m in batch.messages:
                if m.deliver_at_ms is not None and m.deliver_at_ms > now_ms:
                    kind, due = "t", m.deliver_at_ms
                elif m.first_check_ms is not None:
                    kind, due = "h", m.first_check_ms
                else:
                    kind, due = "s", 0
                kinds.append((kind, due))
                args += [kind, due, "", encode_entry(m.tag, m.message_group, m.properties),
                         encode_body(m.message_id, m.payload)]
            reply = await self._run("APPEND", self._keys.queue(topic.topic_id, batch.queue_id), *args,
                                    wait=True)
            placed: list[AppendOutcome] = []
            for (kind, due), number in zip(kinds, reply[1:], strict=True):
                if kind == "s":
                    placed.append(Stored(batch.queue_id, int(number)))
                elif kind == "t":
                    placed.append(Scheduled(held_id(int(number), batch.queue_id), due))
                else:
                    placed.append(Prepared(held_id(int(number), batch.queue_id), due))
            results.append(placed)
        return results

    async def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        config = await self.get_topic(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return None
        entry, body = await self._run("READ", self._keys.queue(config.topic_id, queue_id), offset)
        if not entry:
            return None
        return stored_message(topic, queue_id, offset, entry, body)

    async def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        config = await self._topic(topic)
        metas = await self._pipeline([("hmget", self._keys.queue(config.topic_id, q), (["base", "end"],))
                                      for q in range(config.queues)])
        return [QueueOffsets(q, int(m[0] or 0), int(m[1] or 0)) for q, m in enumerate(metas)]

    async def _pipeline(self, commands: Sequence[tuple[str, str, Any]]) -> list[Any]:
        """Reads of several queues in one cluster pipeline (each command: method, key, arguments)."""
        self._check_open()

        async def run() -> list[Any]:
            pipe = self._conn.cluster.pipeline()
            for method, key, args in commands:
                getattr(pipe, method)(key, *args)
            return list(await pipe.execute())

        return await self._conn.retrying(run) if commands else []

    async def _all_queues(self) -> list[tuple[TopicConfig, int]]:
        topics, _ = await self._all()
        return [(t, q) for t in topics.values() for q in range(t.queues)]

    async def _due(self, suffix: str, now_ms: int, limit: int
                   ) -> tuple[list[tuple[float, TopicConfig, int, bytes]], int | None]:
        """The earliest ``limit`` members due at ``now_ms`` in every queue's ``suffix`` set, and
        when the next one after those falls due."""
        queues = await self._all_queues()
        commands: list[tuple[str, str, Any]] = []
        for topic, q in queues:
            key = self._keys.queue_key(topic.topic_id, q, suffix)
            commands.append(("zrangebyscore", key, ("-inf", now_ms, 0, limit + 1, True)))
            commands.append(("zrangebyscore", key, (f"({now_ms}", "+inf", 0, 1, True)))
        replies = await self._pipeline(commands)
        due: list[tuple[float, TopicConfig, int, bytes]] = []
        later: list[float] = []
        for index, (topic, q) in enumerate(queues):
            due += [(score, topic, q, member) for member, score in replies[2 * index]]
            later += [score for _, score in replies[2 * index + 1]]
        due = heapq.nsmallest(limit + 1, due, key=lambda d: (d[0], d[1].topic_id, d[2], d[3]))
        following = [due[limit][0]] if len(due) > limit else later
        return due[:limit], (int(min(following)) if following else None)

    # -- scheduled messages ------------------------------------------------------------------

    async def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        due, next_due = await self._due("tm", now_ms, limit)
        per_queue: dict[tuple[int, int], tuple[TopicConfig, int, int]] = {}
        for _, topic, q, _ in due:
            _, _, count = per_queue.get((topic.topic_id, q), (topic, q, 0))
            per_queue[(topic.topic_id, q)] = (topic, q, count + 1)
        replies = await self._fan_out([self._run("FIRE", self._keys.queue(t.topic_id, q), now_ms, count, "tm")
                                       for t, q, count in per_queue.values()])
        fired: list[tuple[int, Fired]] = []
        for (topic, q, _), reply in zip(per_queue.values(), replies, strict=True):
            items = reply[1:]
            for i in range(0, len(items), 3):
                due_ms = int(float(items[i + 2]))
                fired.append((due_ms, Fired(topic.name, q, int(items[i]), items[i + 1].decode(), due_ms)))
        fired.sort(key=lambda f: f[0])
        return FireResult([f for _, f in fired], next_due)

    async def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        config = await self._topic(topic)
        number, q = split_held_id(timer_id)
        if q >= config.queues:
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        reply = await self._run("RECALL", self._keys.queue(config.topic_id, q), number, due_ms)
        if reply[0] != b"OK":
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        return str(reply[1].decode())

    async def _held_stats(self, topic: str, suffix: str) -> tuple[int, int | None]:
        config = await self._topic(topic)
        commands: list[tuple[str, str, Any]] = []
        for q in range(config.queues):
            key = self._keys.queue_key(config.topic_id, q, suffix)
            commands += [("zcard", key, ()), ("zrange", key, (0, 0, False, True))]
        replies = await self._pipeline(commands)
        pending = sum(int(replies[i]) for i in range(0, len(replies), 2))
        firsts = [score for i in range(1, len(replies), 2) for _, score in replies[i]]
        return pending, (int(min(firsts)) if firsts else None)

    async def timer_stats(self, topic: str) -> TimerStats:
        return TimerStats(*await self._held_stats(topic, "tm"))

    # -- transactional half messages ---------------------------------------------------------

    async def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> TransactionEnd:
        config = await self._topic(topic)
        number, q = split_held_id(transaction_id)
        if q >= config.queues:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        reply = await self._run("FIRE", self._keys.queue(config.topic_id, q), now_ms, 0, "hx", number,
                                int(commit), wait=commit)
        if reply[0] != b"OK":
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        offset = int(reply[1])
        return TransactionEnd(reply[2].decode(), offset if commit else None)

    async def due_checks(self, now_ms: int, limit: int) -> DueChecks:
        due, next_check = await self._due("hx", now_ms, limit)
        commands: list[tuple[str, str, Any]] = []
        for _, topic, q, member in due:
            commands.append(("hget", self._keys.queue_key(topic.topic_id, q, "hd"), (member,)))
            commands.append(("hget", self._keys.queue_key(topic.topic_id, q, "hc"), (member,)))
        replies = await self._pipeline(commands)
        found: list[HalfMessage] = []
        for index, (score, topic, q, member) in enumerate(due):
            raw, checks = replies[2 * index], replies[2 * index + 1]
            if raw is None:
                continue  # ended meanwhile
            created, _, body = split_held(raw)
            message_id, payload, _ = decode_body(body)
            message = StoredMessage(topic.name, q, -1, created, message_id, payload)
            found.append(HalfMessage(topic.name, held_id(int(member), q), message, int(checks or 0), int(score)))
        return DueChecks(found, next_check)

    async def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        config = await self._topic(topic)
        number, q = split_held_id(transaction_id)
        reply = [b"missing"] if q >= config.queues else await self._run(
            "RESCHEDULE_CHECK", self._keys.queue(config.topic_id, q), number, next_check_ms, checks)
        if reply[0] != b"OK":
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")

    async def half_stats(self, topic: str) -> HalfStats:
        return HalfStats(*await self._held_stats(topic, "hx"))
