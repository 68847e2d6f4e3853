"""The broker's store calls: what runs on the store's worker, possibly in the store process.

Each is a module-level function ``fn(store, now_ms, *args)`` (see storage/executor.py): sent to
the store process by name, with its arguments pickled, so arguments are plain values (no
closures) and anything callable among them (an entry filter) pickles itself. Calls that do
several store operations in one go do so to make them one round trip and one step on the store's
timeline: no other call runs between them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from storage.base import EntryFilter, MessageStore, PopResult
from storage.errors import GroupNotFound, InvalidReceipt, TopicNotFound
from storage.model import (
    FireResult,
    GroupConfig,
    GroupQueueProgress,
    HalfMessage,
    OffsetTarget,
    Popped,
    Receipt,
    Resent,
    ReviveResult,
    TopicConfig,
    TopicType,
)

_GONE = (InvalidReceipt, GroupNotFound, TopicNotFound)
"""A delivery that can no longer be acted on: acked meanwhile, or its group or topic deleted."""


def topics_and_groups(store: MessageStore, now: int) -> tuple[list[TopicConfig], list[GroupConfig]]:
    return store.list_topics(), store.list_groups()


def create_topic(store: MessageStore, now: int, name: str, type: TopicType, queues: int) -> TopicConfig:
    return store.create_topic(name, type, queues, now)


def get_topic(store: MessageStore, now: int, name: str) -> TopicConfig | None:
    return store.get_topic(name)


def set_topic_retention(store: MessageStore, now: int, name: str, retention_ms: int | None) -> TopicConfig:
    return store.set_topic_retention(name, retention_ms)


def delete_topic(store: MessageStore, now: int, name: str) -> None:
    store.delete_topic(name)


def create_group(store: MessageStore, now: int, name: str, from_beginning: bool) -> GroupConfig:
    return store.create_group(name, now, from_beginning=from_beginning)


def update_group(store: MessageStore, now: int, wanted: GroupConfig) -> GroupConfig:
    return store.update_group(wanted)


def delete_group(store: MessageStore, now: int, name: str) -> None:
    store.delete_group(name)


def recall(store: MessageStore, now: int, topic: str, timer_id: int, due_ms: int) -> str:
    return store.recall(topic, timer_id, due_ms, now)


def end_transaction(store: MessageStore, now: int, topic: str, transaction: int,
                    commit: bool) -> tuple[str, int | None]:
    return store.end_transaction(topic, transaction, commit, now)


def pop(store: MessageStore, now: int, group: str, topic: str, queue_ids: Sequence[int], max_messages: int,
        invisible_ms: int, accept: EntryFilter | None, scan_limit: int) -> PopResult:
    return store.pop(group, topic, queue_ids, max_messages, invisible_ms, now, accept, scan_limit)


def redeliver(store: MessageStore, now: int, group: str, topic: str, deliveries: Sequence[tuple[Receipt, int]],
              invisible_ms: int) -> list[Popped]:
    """The deliveries (receipt, attempt) still in flight, made invisible for ``invisible_ms`` more,
    with their messages: what a receive repeating an attempt id gets again."""
    again = []
    for receipt, attempt in deliveries:
        try:
            store.change_invisibility(group, topic, receipt, invisible_ms, now, renew=True)
        except _GONE:
            continue
        message = store.get_message(topic, receipt.queue_id, receipt.offset)
        if message is not None:
            again.append(Popped(message, receipt, attempt, now + invisible_ms))
    return again


def release(store: MessageStore, now: int, group: str, topic: str, receipts: Sequence[Receipt]) -> None:
    """Make deliveries visible again at once (the consumer will not process them)."""
    for receipt in receipts:
        with contextlib.suppress(*_GONE):
            store.change_invisibility(group, topic, receipt, 0, now, renew=True)


def ack(store: MessageStore, now: int, group: str, topic: str,
        receipts: Sequence[Receipt]) -> list[Exception | None]:
    """Acknowledge each delivery; per receipt, None or the error that refused it."""
    results: list[Exception | None] = []
    for receipt in receipts:
        try:
            store.ack(group, topic, receipt, now)
            results.append(None)
        except Exception as exc:
            results.append(exc)
    return results


def change_invisibility(store: MessageStore, now: int, group: str, topic: str, receipt: Receipt,
                        invisible_ms: int) -> Receipt:
    return store.change_invisibility(group, topic, receipt, invisible_ms, now)


def renew(store: MessageStore, now: int, deliveries: Sequence[tuple[str, str, Receipt]],
          invisible_ms: int) -> list[int | None]:
    """Extend the invisibility of (group, topic, receipt) deliveries; per delivery, when it now
    becomes visible, or None if it is gone."""
    results: list[int | None] = []
    for group, topic, receipt in deliveries:
        try:
            store.change_invisibility(group, topic, receipt, invisible_ms, now, renew=True)
            results.append(now + invisible_ms)
        except _GONE:
            results.append(None)
    return results


def dead_letter(store: MessageStore, now: int, group: str, topic: str, receipt: Receipt) -> tuple[str, int]:
    return store.dead_letter(group, topic, receipt, now)


def resend_dead_letters(store: MessageStore, now: int, group: str,
                        message_ids: Sequence[str]) -> dict[str, Resent | None]:
    return store.resend_dead_letters(group, message_ids, now)


def reset_offset(store: MessageStore, now: int, group: str, topic: str, to: OffsetTarget) -> list[GroupQueueProgress]:
    return store.reset_offset(group, topic, to, now)


def revive_expired(store: MessageStore, now: int, limit: int, max_attempts: dict[str, int]) -> ReviveResult:
    """Expired deliveries back to retry (or to the dead-letter topic past the group's limit)."""
    return store.revive_expired(now, limit, lambda group: max_attempts.get(group, 1 << 30))


def delete_expired(store: MessageStore, now: int, default_retention_ms: int) -> int:
    return store.delete_expired(now, default_retention_ms)


def fire_timers(store: MessageStore, now: int, limit: int) -> FireResult:
    return store.fire_timers(now, limit)


def due_checks(store: MessageStore, now: int, limit: int) -> tuple[list[HalfMessage], int | None]:
    return store.due_checks(now, limit)


def reschedule_check(store: MessageStore, now: int, topic: str, transaction: int, at_ms: int, checks: int) -> None:
    store.reschedule_check(topic, transaction, at_ms, checks)


def describe_topic(store: MessageStore, now: int, name: str) -> tuple[Any, ...]:
    """(topic, queue offsets, [(group, progress)], now, timer stats, half-message stats), or ()
    if there is no such topic: what ``topic describe`` shows, read in one step."""
    topic = store.get_topic(name)
    if topic is None:
        return ()
    groups = store.topic_groups(name)
    return (topic, store.queue_offsets(name), [(g, store.progress(g, name)) for g in groups], now,
            store.timer_stats(name), store.half_stats(name))


def describe_group(store: MessageStore, now: int, name: str, subscribed: set[str],
                   filters: dict[str, EntryFilter | None]) -> tuple[Any, ...]:
    """(group, [(topic, progress)], now), or () if there is no such group. The topics are those
    the group has progress on plus those its connected consumers subscribe to (that exist);
    backlog counts only what the consumers' filter for each topic accepts."""
    group = store.get_group(name)
    if group is None:
        return ()
    topics = sorted((set(store.group_topics(name)) | subscribed) & {t.name for t in store.list_topics()})
    return group, [(t, store.progress(name, t, filters.get(t))) for t in topics], now
