"""Sleep until a time, or until someone asks for an earlier wake-up: how the broker's background
loops wait, on an injected clock (rmqproxy/clock.py), so tests drive them with a fake one.

A loop calls :meth:`Alarm.begin` before it asks the store what is due, then :meth:`Alarm.sleep`
until the next due time the store reported. Whoever learns of something due earlier (a send that
kept a timer, a receive that set a shorter invisibility) calls :meth:`Alarm.wake_at`. A request
made while the loop was asking the store is kept, so it is never lost between "the store said
nothing is due before T" and "sleep until T"; a request made before ``begin`` concerns a change
the store already shows.
"""

from __future__ import annotations

import asyncio

from rmqproxy.broker.sharing import Sharing
from rmqproxy.clock import Sleeper


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class Alarm:
    def __init__(self, clock: Sleeper) -> None:
        self._clock = clock
        self._asked: int | None = None
        """The earliest wake-up asked for since the loop last began looking."""
        self._changed = asyncio.Event()
        self._sleeping = False
        self._target: int | None = None
        """While sleeping: until when (None: until woken)."""

    def wake_at(self, at_ms: int) -> None:
        """Make the loop wake by ``at_ms`` (at once if that has passed)."""
        if self._asked is None or at_ms < self._asked:
            self._asked = at_ms
            # A loop that is not asleep takes it into account when it goes to sleep; one asleep
            # until earlier anyway need not wake to find that out.
            if self._sleeping and (self._target is None or at_ms < self._target):
                self._changed.set()

    def wake(self) -> None:
        """Make the loop look again now."""
        self.wake_at(self._clock.now_ms())

    def begin(self) -> None:
        """The loop is about to look at the store: what was asked so far is answered by that."""
        self._asked = None
        self._changed.clear()

    async def sleep(self, until_ms: int | None) -> None:
        """Sleep until ``until_ms`` (None: until woken), or until an earlier time asked for since
        :meth:`begin`."""
        while True:
            target = _earliest(until_ms, self._asked)
            if target is not None and target <= self._clock.now_ms():
                return
            self._changed.clear()
            self._sleeping, self._target = True, target
            try:
                async with self._clock.deadline(target):
                    await self._changed.wait()
            except TimeoutError:
                return
            finally:
                self._sleeping = False


class SharedAlarm(Alarm):
    """The alarm of a loop that only one process sharing the store runs (its lease holder,
    rmqproxy/broker/background.py): a wake-up asked for in a process that does not hold the lease
    is passed on to the others as an ``alarm`` notice (only when it is earlier than the last one
    passed on that is still ahead, so a stream of receives sends few)."""

    def __init__(self, clock: Sleeper, name: str, sharing: Sharing) -> None:
        super().__init__(clock)
        self.name = name
        self._sharing = sharing
        self.held = not sharing.shared
        """This process holds the loop's lease (always, alone)."""
        self._passed_on: int | None = None

    def wake_at(self, at_ms: int) -> None:
        super().wake_at(at_ms)
        if self.held:
            return
        if self._passed_on is None or at_ms < self._passed_on or self._passed_on <= self._clock.now_ms():
            self._passed_on = at_ms
            self._sharing.post("alarm", (self.name, at_ms))


async def sleep_until(clock: Sleeper, at_ms: int) -> None:
    """Sleep until ``clock`` reaches ``at_ms``."""
    await Alarm(clock).sleep(at_ms)
