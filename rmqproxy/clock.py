"""Where time comes from, and how the server waits for it. Injected everywhere, so tests can
substitute their own.

* :class:`Clock`: reads the time (epoch ms).
* :class:`Sleeper`: a clock that can also bound a wait by a time on itself (``deadline``), which is
  all the broker's loops and long polls need to sleep.
* :class:`SystemClock`: the wall clock, waits on the event loop.
* :class:`FakeClock`: time that moves only when a test says so; waits end exactly when it passes
  their deadline.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Epoch milliseconds (persisted in the store, so a wall clock, not a monotonic one)."""
        ...


class Sleeper(Clock, Protocol):
    def deadline(self, at_ms: int | None) -> AbstractAsyncContextManager[object]:
        """An async context manager that cancels its body when this clock reaches ``at_ms``
        (None: never) and then raises TimeoutError, like ``asyncio.timeout``. A body that finishes
        without waiting is never cut short."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def deadline(self, at_ms: int | None) -> AbstractAsyncContextManager[object]:
        if at_ms is None:
            return asyncio.timeout(None)
        return asyncio.timeout(max(0.0, (at_ms - self.now_ms()) / 1000))


class FakeClock:
    """A clock for tests: it stands still until :meth:`advance`, which ends every wait whose
    deadline it passes and then lets the event loop run until nothing is left to do, so a test
    can assert what happened at exactly that time."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms
        self._deadlines: set[_FakeDeadline] = set()

    def now_ms(self) -> int:
        return self._now

    def deadline(self, at_ms: int | None) -> AbstractAsyncContextManager[object]:
        return _FakeDeadline(self, at_ms)

    def waiting_until(self) -> list[int]:
        """The deadlines of the waits in progress, earliest first (what the server sleeps until)."""
        return sorted(d.at_ms for d in self._deadlines if d.at_ms is not None)

    async def advance(self, ms: int) -> None:
        """Move time on by ``ms``, end the waits that are due, and let everything settle."""
        await self.advance_to(self._now + ms)

    async def advance_to(self, at_ms: int) -> None:
        self._now = max(self._now, at_ms)
        for deadline in list(self._deadlines):
            if deadline.at_ms is not None and deadline.at_ms <= self._now:
                deadline.expire_soon()
        await self.settle()

    @staticmethod
    async def settle() -> None:
        """Let the event loop run until no callback is ready: every task woken so far has run as
        far as it can without more time passing (or I/O, or another thread)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's queue of runnable callbacks
        for _ in range(100_000):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                return
        if ready is not None:
            raise RuntimeError("the event loop never settled: something keeps waking itself")


class _FakeDeadline:
    """``asyncio.timeout`` on a :class:`FakeClock`: expiry cancels the task while it waits and the
    exit turns that cancellation into TimeoutError (unless someone else cancelled it too)."""

    def __init__(self, clock: FakeClock, at_ms: int | None) -> None:
        self.clock = clock
        self.at_ms = at_ms
        self._task: asyncio.Task[object] | None = None
        self._state = "created"
        self._cancelling = 0
        self._handle: asyncio.Handle | None = None

    async def __aenter__(self) -> _FakeDeadline:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("a deadline needs a task")
        self._state = "entered"
        self._cancelling = self._task.cancelling()
        self.clock._deadlines.add(self)
        if self.at_ms is not None and self.at_ms <= self.clock.now_ms():
            self.expire_soon()
        return self

    def expire_soon(self) -> None:
        if self._handle is None and self._state == "entered":
            self._handle = asyncio.get_running_loop().call_soon(self._expire)

    def _expire(self) -> None:
        self._handle = None
        if self._state == "entered" and self._task is not None:
            self._state = "expiring"
            self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.clock._deadlines.discard(self)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._state == "expiring":
            self._state = "expired"
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc
        else:
            self._state = "exited"
