"""Flow control: how many bytes of message bodies a server process works on for sends at once.

Without a cap, sixteen producers each sending 32 x 1 MiB per SendMessage had the server holding
2.2 GiB and the store process 1.6 GiB for 512 MiB in flight: every body is copied on its way
(protobuf, the domain message, the pickle for the store process, the store's write batch). With
:class:`ByteBudget`, a send waits (first come, first served) until the bodies in progress leave
room for its own, so the copies exist for at most ``limit`` bytes at a time and the senders slow
down instead of the server swelling; gRPC's flow control then pushes back on the clients. A
request larger than the whole budget waits until it is alone, then goes through.

What is in flight inside gRPC before a handler runs (requests received and decoded) is not
counted: that is bounded by gRPC's per-connection windows and by the clients' own in-flight limits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Bytes at most; 0 or less: no limit."""
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Sends waiting for room (for metrics and tests)."""
        return len(self._waiting)

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Hold ``size`` bytes of the budget for the duration of the block."""
        if self.limit <= 0:
            yield
            return
        size = min(size, self.limit)
        if self._waiting or self.used + size > self.limit:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((size, granted))
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():  # granted, then cancelled: give it back
                    self._release(size)
                else:
                    self._waiting.remove((size, granted))
                    self._grant()  # it may have been holding up smaller sends behind it
                raise
        else:
            self.used += size
        try:
            yield
        finally:
            self._release(size)

    def _release(self, size: int) -> None:
        self.used -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.limit:
            size, granted = self._waiting.popleft()
            if granted.done():
                continue
            self.used += size
            granted.set_result(None)
