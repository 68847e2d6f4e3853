"""The Redis Cluster store's consumption: pop, ack, change of invisibility, revive, dead letters.

Each queue is changed by one script. A pop over several queues is one script per queue (each
atomic; they cannot be one, being on different nodes). A filter the scripts can test (a
:class:`~storage.base.TagFilter`) goes with the pop; any other is evaluated here on the entries the
pop will examine, read first, and its verdicts go with the pop (a pop that runs past them stops
there and says ``more``).

Dead-lettering spans two queues (the message's and the dead-letter topic's): the copy is appended
first, then the delivery is ended if it is still the one copied, so a crash in between leaves a
duplicate dead letter, never a lost message.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

from storage.base import EntryFilter, PopResult, TagFilter, dlq_topic_name
from storage.errors import InvalidReceipt, QueueNotFound, TopicExists
from storage.model import (
    DeadLetter,
    DeadLettered,
    GroupConfig,
    Popped,
    Receipt,
    Resent,
    Revived,
    ReviveResult,
    TopicConfig,
    TopicType,
)
from storage.redis.client import Script
from storage.redis.layout import decode_body, decode_entry, encode_body, stored_message
from storage.redis.messages import RedisMessages
from storage.redis.query_lua import QUERY

_QUERY = Script(QUERY)
FILTER_WINDOW = 1024
"""How many new messages a pop with a filter evaluated here looks at, when it sets no scan limit."""


def _entry_rest(entry: bytes) -> bytes:
    """The caller's part of a stored entry (tag, message group, properties)."""
    return entry.split(b"|", 2)[2]


class RedisConsume(RedisMessages):
    async def pop(
        self,
        group: str,
        topic: str,
        queue_ids: Sequence[int],
        max_messages: int,
        invisible_ms: int,
        now_ms: int,
        accept: EntryFilter | None = None,
        scan_limit: int | None = None,
    ) -> PopResult:
        g, t = await self._group_and_topic(group, topic)
        for queue_id in queue_ids:
            if not 0 <= queue_id < t.queues:
                raise QueueNotFound(topic, queue_id)
        visible_at = now_ms + invisible_ms
        popped = PopResult()
        start = [g.group_id, int(g.from_beginning), g.created_ms]
        for queue_id in queue_ids:
            if len(popped) >= max_messages:
                break
            key = self._keys.queue(t.topic_id, queue_id)
            how: list[object] = ["n"]
            if isinstance(accept, TagFilter):
                how = ["t", *sorted(accept.tags)]
            elif accept is not None:
                window = FILTER_WINDOW if scan_limit is None else scan_limit
                first, *entries = await self._run("PEEK", key, *start, window)
                verdicts = "".join(
                    "1" if raw and accept(decode_entry(int(first) + i, raw)[0]) else "0"
                    for i, raw in enumerate(entries))
                how = ["d", int(first), verdicts]
            reply = await self._run("POP", key, *start, now_ms, visible_at, max_messages - len(popped),
                                    int(g.fifo), -1 if scan_limit is None else scan_limit, *how)
            if int(reply[1]):
                popped.more = True
            items = reply[2:]
            for i in range(0, len(items), 5):
                offset, attempt, generation, entry, body = items[i:i + 5]
                message = stored_message(topic, queue_id, int(offset), entry, body)
                receipt = Receipt(g.group_id, t.topic_id, queue_id, int(offset), int(generation))
                popped.append(Popped(message, receipt, int(attempt), visible_at))
        return popped

    async def _receipt_target(self, group: str, topic: str, receipt: Receipt
                              ) -> tuple[GroupConfig, TopicConfig, str]:
        g, t = await self._group_and_topic(group, topic)
        if receipt.group_id != g.group_id or receipt.topic_id != t.topic_id:
            raise InvalidReceipt("unknown", "receipt belongs to another group or topic")
        if not 0 <= receipt.queue_id < t.queues:
            raise InvalidReceipt("unknown", "no such queue")
        return g, t, self._keys.queue(t.topic_id, receipt.queue_id)

    async def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        g, _, key = await self._receipt_target(group, topic, receipt)
        (status,) = await self._run("ACK", key, g.group_id, receipt.offset, receipt.generation, now_ms)
        if status != b"OK":
            raise InvalidReceipt(status.decode())

    async def change_invisibility(
        self,
        group: str,
        topic: str,
        receipt: Receipt,
        invisible_ms: int,
        now_ms: int,
        *,
        renew: bool = False,
        suspend: bool = False,
    ) -> Receipt:
        g, _, key = await self._receipt_target(group, topic, receipt)
        reply = await self._run("CHANGE_INVISIBILITY", key, g.group_id, receipt.offset, receipt.generation, now_ms,
                                now_ms + invisible_ms, int(renew), int(suspend))
        if reply[0] != b"OK":
            raise InvalidReceipt(reply[0].decode())
        return Receipt(receipt.group_id, receipt.topic_id, receipt.queue_id, receipt.offset, int(reply[1]))

    async def _copy_to_dlq(self, group: GroupConfig, topic: str, entry: bytes, body: bytes, attempts: int,
                           now_ms: int) -> DeadLettered:
        """Append a copy of the message to the group's dead-letter topic (made on first use)."""
        name = dlq_topic_name(group.name)
        dlq = await self.get_topic(name)
        if dlq is None:
            try:
                dlq = await self._new_topic(name, TopicType.NORMAL, 1, now_ms)
            except TopicExists:
                dlq = await self._topic(name)
        message_id, payload, _ = decode_body(body)
        copy = encode_body(message_id, payload, DeadLetter(topic, message_id, attempts))
        reply = await self._run("APPEND", self._keys.queue(dlq.topic_id, 0), now_ms, "s", 0, "",
                                _entry_rest(entry), copy)
        return DeadLettered(dlq.name, int(reply[1]))

    async def revive_expired(self, now_ms: int, limit: int,
                             max_attempts: Mapping[str, int] | None = None) -> ReviveResult:
        due, next_due = await self._due("inv", now_ms, limit)
        _, groups = await self._all()
        by_id = {g.group_id: g for g in groups.values()}
        group_args: list[object] = []
        for g in groups.values():
            most = None if max_attempts is None else max_attempts.get(g.name)
            group_args += [g.group_id, int(g.fifo), -1 if most is None else most]
        counts: dict[tuple[int, int], tuple[TopicConfig, int, int]] = {}
        for _, topic, q, _ in due:
            _, _, count = counts.get((topic.topic_id, q), (topic, q, 0))
            counts[(topic.topic_id, q)] = (topic, q, count + 1)
        replies = await self._fan_out([self._run("REVIVE", self._keys.queue(t.topic_id, q), now_ms, count, *group_args)
                                       for t, q, count in counts.values()])
        revived: list[tuple[int, int, int, int, Revived]] = []
        for (topic, q, _), reply in zip(counts.values(), replies, strict=True):
            items = reply[1:]
            for i in range(0, len(items), 8):
                kind, gid, offset, attempt, visible, generation, entry, body = items[i:i + 8]
                group = by_id[int(gid)]
                dead_letter_topic = None
                if kind == b"d":
                    moved = await self._copy_to_dlq(group, topic.name, entry, body, int(attempt), now_ms)
                    key = self._keys.queue(topic.topic_id, q)
                    await self._run("FINISH_DEAD_LETTER", key, gid, offset, generation)
                    dead_letter_topic = moved.topic
                revived.append((int(visible), topic.topic_id, q, int(offset), Revived(
                    group.name, topic.name, q, int(offset), int(attempt), dead_letter_topic=dead_letter_topic)))
        revived.sort(key=lambda r: r[:4])
        return ReviveResult([r[4] for r in revived], next_due)

    async def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int,
                          attempts: int | None = None) -> DeadLettered:
        g, _, key = await self._receipt_target(group, topic, receipt)
        reply = await self._run("TAKE_FOR_DEAD_LETTER", key, g.group_id, receipt.offset, receipt.generation, now_ms)
        if reply[0] == b"gone":
            raise InvalidReceipt("unknown", "the message is no longer stored")
        if reply[0] != b"OK":
            raise InvalidReceipt(reply[0].decode())
        _, stored_attempts, entry, body = reply
        moved = await self._copy_to_dlq(g, topic, entry, body, max(int(stored_attempts), attempts or 0), now_ms)
        (status,) = await self._run("FINISH_DEAD_LETTER", key, g.group_id, receipt.offset, receipt.generation)
        if status != b"OK":
            raise InvalidReceipt(status.decode(), "changed while it was being dead-lettered (a copy was made)")
        return moved

    async def resend_dead_letters(self, group: str, message_ids: Sequence[str],
                                  now_ms: int) -> dict[str, Resent | None]:
        g = await self._group(group)
        result: dict[str, Resent | None] = dict.fromkeys(message_ids)
        dlq = await self.get_topic(dlq_topic_name(group))
        if dlq is None:
            return result
        # The DLQ's message-id index (storage/redis/query_lua.py) finds each copy: reading the whole
        # dead-letter queue would pull every body of it out of Redis at once.
        self._check_open()
        lookups = [(message_id, queue_id) for message_id in dict.fromkeys(message_ids)
                   for queue_id in range(dlq.queues)]
        replies = await self._fan_out([self._conn.run(_QUERY, [self._keys.queue(dlq.topic_id, queue_id)],
                                                      ("i", message_id, 1, -1, -1))
                                       for message_id, queue_id in lookups])
        latest: dict[str, tuple[int, bytes, bytes]] = {}
        for (message_id, _), reply in zip(lookups, replies, strict=True):
            if reply:  # [offset, entry, body] of the newest copy in that queue
                latest.setdefault(message_id, (int(reply[0]), reply[1], reply[2]))
        for message_id, (_, entry, body) in latest.items():
            _, payload, origin_info = decode_body(body)
            assert origin_info is not None
            origin = await self.get_topic(origin_info.topic)
            if origin is None:
                continue
            queue_id = zlib.crc32(message_id.encode()) % origin.queues
            reply = await self._run("APPEND", self._keys.queue(origin.topic_id, queue_id), now_ms, "s", 0,
                                    g.group_id, _entry_rest(entry), encode_body(message_id, payload))
            result[message_id] = Resent(message_id, origin.name, queue_id, int(reply[1]))
        return result
