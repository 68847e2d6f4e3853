"""Wakes ReceiveMessage calls that are long-polling a topic, as soon as something arrives for them.

A waiter remembers its consumer group's version of the topic before it looks in the store, and
waits only if that version is unchanged; every event bumps the versions it concerns, so a message
that lands between "found nothing" and "start waiting" is never missed, and nothing polls with
sleeps. How long a waiter waits is the caller's business (a deadline on the broker's clock).

Events say how many messages they make receivable and for whom, so only that many waiters wake
(plus one spare, in case a woken waiter is gone): an append of one message to a topic read by
sixteen long-polling consumers of a group wakes two of them, not sixteen that would all ask the
store and all but one come back empty.

Gathering: a woken receiver of a busy topic (messages arriving less than half a gather window
apart, on average) may hold on for a few milliseconds so that what arrives next goes out in the
same answer: one ReceiveMessage and one AckMessage for several messages instead of one each, which
is what a caught-up consumer otherwise pays per message. While a receiver gathers, the arrivals for
its group are counted towards it first and wake nobody else, up to the room it has; a full
gatherer stops waiting at once. A receiver of a quiet topic (a lone message now and then) never
gathers, nor does the only receiver of its group here (a lone consumer), so their latency is
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator

from rmqproxy.clock import Clock

_SPARE = 1
_SMOOTHING = 0.2
"""Weight of the newest gap in the moving average of the time between arrivals."""


class Gathering:
    """A woken receiver holding on for ``room`` more messages (see the module's docstring)."""

    __slots__ = ("future", "key", "room", "taken")

    def __init__(self, key: tuple[str, str], room: int, future: asyncio.Future[None]) -> None:
        self.key = key
        self.room = room
        self.taken = 0
        """Messages announced to it (and to no other receiver) so far."""
        self.future = future


class Waiters:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        """Times arrivals, to tell busy topics (None: never busy, never gather)."""
        self._arrivals: dict[str, tuple[int, float | None]] = {}
        """topic -> (time of its last arrival, moving average of the ms between arrivals)"""
        self._gathering: dict[tuple[str, str], Gathering] = {}
        self._receiving: dict[tuple[str, str], int] = {}
        """(topic, group) -> receive calls in progress here (a lone consumer never gathers)."""
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
        if count and self._clock is not None:
            self._arrived(topic, count)
        groups = self._waiting.get(topic, {})
        targets = [g for (t, g) in self._versions if t == topic] if group is None else [group]
        for name in targets:
            self._versions[(topic, name)] = self._versions.get((topic, name), 0) + 1
            left = count
            gathering = self._gathering.get((topic, name)) if self._gathering else None
            if gathering is not None:
                if left is None:
                    self._full(gathering)
                else:
                    taken = min(gathering.room - gathering.taken, left)
                    gathering.taken += taken
                    left -= taken
                    if gathering.taken >= gathering.room:
                        self._full(gathering)
                    if not left:
                        continue  # all of it goes to the gatherer: wake no one else
            queue = groups.get(name)
            woken = 0
            while queue and (left is None or woken < left + _SPARE):
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    woken += 1

    def notify_everyone(self) -> None:
        """Wake every waiter of every topic (notices from other processes may have been lost)."""
        for topic in {t for (t, _) in self._versions}:
            self.notify(topic)

    def _arrived(self, topic: str, count: int) -> None:
        assert self._clock is not None
        now = self._clock.now_ms()
        last = self._arrivals.get(topic)
        if last is None:
            self._arrivals[topic] = (now, None)
            return
        at, average = last
        gap = max(now - at, 0) / count
        self._arrivals[topic] = (now, gap if average is None else average + _SMOOTHING * (gap - average))

    def busy(self, topic: str, window_ms: int) -> bool:
        """Messages arrive in ``topic`` often enough that a receiver waiting ``window_ms`` would
        likely get at least two more (and the last arrived within the window)."""
        if self._clock is None or window_ms <= 0:
            return False
        at, average = self._arrivals.get(topic, (0, None))
        if average is None:
            return False
        return average * 2 <= window_ms and self._clock.now_ms() - at <= window_ms

    @contextlib.contextmanager
    def receiving(self, topic: str, group: str) -> Iterator[None]:
        """Count a receive call of ``group`` in progress for the duration."""
        key = (topic, group)
        self._receiving[key] = self._receiving.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._receiving[key] - 1
            if left:
                self._receiving[key] = left
            else:
                del self._receiving[key]

    def gather(self, topic: str, group: str, room: int) -> Gathering | None:
        """Count the next ``room`` arrivals for ``group`` towards the caller; await the returned
        future (with a deadline) and then :meth:`end_gather`. None when another receiver of the
        group is gathering already, or when the caller is the group's only receive here: a lone
        consumer is answered at once (there is no one whose calls gathering would spare)."""
        key = (topic, group)
        if room <= 0 or key in self._gathering or self._receiving.get(key, 0) < 2:
            return None
        gathering = Gathering(key, room, asyncio.get_running_loop().create_future())
        self._gathering[key] = gathering
        return gathering

    def gathering(self, topic: str, group: str) -> bool:
        """A receive of ``group`` is gathering ``topic``'s arrivals now."""
        return (topic, group) in self._gathering

    def end_gather(self, gathering: Gathering, *, answered: bool = True) -> None:
        """Stop counting arrivals towards ``gathering``. ``answered`` False (the receive was
        cancelled before it looked in the store): what was counted towards it wakes others."""
        if self._gathering.get(gathering.key) is gathering:
            del self._gathering[gathering.key]
        if not gathering.future.done():
            gathering.future.cancel()
        if not answered:
            # Receives of the group that let it gather wait for it: someone else must look now.
            topic, group = gathering.key
            self.notify(topic, group, max(gathering.taken, 1))

    def _full(self, gathering: Gathering) -> None:
        del self._gathering[gathering.key]
        if not gathering.future.done():
            gathering.future.set_result(None)

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
