"""Wakes ReceiveMessage calls that are long-polling a topic, as soon as something arrives.

A waiter remembers the topic's version before it looks in the store, and waits only if the
version is unchanged; every append, revive or release bumps the version and wakes everyone
waiting on that topic. So a message that lands between "found nothing" and "start waiting" is
never missed, and nothing polls with sleeps.
"""

from __future__ import annotations

import asyncio


class Waiters:
    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self.waiting = 0
        """Calls currently waiting (for metrics and tests)."""

    def version(self, topic: str) -> int:
        return self._versions.get(topic, 0)

    def notify(self, topic: str) -> None:
        """Something became receivable in ``topic``."""
        self._versions[topic] = self._versions.get(topic, 0) + 1
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(self, topic: str, seen_version: int, timeout: float) -> bool:
        """Wait until ``topic`` changes after ``seen_version``; False if ``timeout`` (s) ran out."""
        if self.version(topic) != seen_version:
            return True
        event = self._events.get(topic)
        if event is None:
            event = self._events[topic] = asyncio.Event()
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
