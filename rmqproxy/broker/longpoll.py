"""Wakes ReceiveMessage calls that are long-polling a topic, as soon as something arrives for them.

A waiter remembers its consumer group's version of the topic before it looks in the store, and
waits only if that version is unchanged; every event bumps the versions it concerns, so a message
that lands between "found nothing" and "start waiting" is never missed, and nothing polls with
sleeps. How long a waiter waits is the caller's business (a deadline on the broker's clock).

Events say how many messages they make receivable and for whom, so only that many waiters wake
(plus one spare, in case a woken waiter is gone): an append of one message to a topic read by
sixteen long-polling consumers of a group wakes two of them, not sixteen that would all ask the
store and all but one come back empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

_SPARE = 1


class Waiters:
    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], int] = {}
        self._waiting: dict[str, dict[str, deque[asyncio.Future[None]]]] = {}
        """topic -> consumer group -> waiters, oldest first"""
        self.waiting = 0
        """Calls currently waiting (for metrics and tests)."""

    def version(self, topic: str, group: str) -> int:
        # Registered on first read, so an event between this read and wait() bumps it.
        return self._versions.setdefault((topic, group), 0)

    def notify(self, topic: str, group: str | None = None, count: int | None = None) -> None:
        """Something became receivable in ``topic``: for ``group`` only or for every group, and
        ``count`` messages of it (None: no idea how many, wake every waiter)."""
        groups = self._waiting.get(topic, {})
        targets = [g for (t, g) in self._versions if t == topic] if group is None else [group]
        for name in targets:
            self._versions[(topic, name)] = self._versions.get((topic, name), 0) + 1
            queue = groups.get(name)
            woken = 0
            while queue and (count is None or woken < count + _SPARE):
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    woken += 1

    def notify_everyone(self) -> None:
        """Wake every waiter of every topic (notices from other processes may have been lost)."""
        for topic in {t for (t, _) in self._versions}:
            self.notify(topic)

    async def wait(self, topic: str, group: str, seen_version: int) -> None:
        """Return once ``group``'s view of ``topic`` has changed after ``seen_version`` (at once if
        it already has). Cancel it to stop waiting."""
        if self.version(topic, group) != seen_version:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        by_group = self._waiting.setdefault(topic, {})
        by_group.setdefault(group, deque()).append(future)
        self.waiting += 1
        try:
            await future
        finally:
            self.waiting -= 1
            queue = by_group.get(group)
            if queue is not None:
                if not future.done():
                    future.cancel()
                with contextlib.suppress(ValueError):  # not there if a notify took it
                    queue.remove(future)
                if not queue:
                    del by_group[group]
                    if not by_group:
                        self._waiting.pop(topic, None)
