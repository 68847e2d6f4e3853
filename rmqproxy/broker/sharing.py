"""What one process of the broker tells the others sharing its store, over the store's bus
(storage/bus.py): the only place the broker touches the bus.

With ``serve --workers N`` (or several nodes) a client's calls land on any process, so what one
process learns that another needs travels as a notice:

==========  ====================================================================================
kind        what the receivers do
==========  ====================================================================================
wake        wake long polls of (topic, group) for ``count`` messages (a send, a timer, an ack of FIFO)
catalog     re-read a topic or group from the store (created, changed, deleted elsewhere)
alarm       wake a background loop by a time (only the lease holder runs it; see background.py)
client      a client's session summary as its process sees it (who is online with what subscription)
gone        a client left: release the deliveries renewed for it here too
unrenew     stop renewing a delivery whose invisibility its client changed elsewhere
attempt     what a receive with an attempt id delivered, should the retry land here
check       ask a producer connected here about a half message (the lease holder found it here)
question    ask a client connected here for a stack dump or to verify a message (broker/questions.py)
answer      a client's answer to a question another process asked
==========  ====================================================================================

Notices are batched per turn of the event loop (many wakes of one topic become one) and carry
nothing that exists nowhere else: a lost one costs latency or a duplicate, never a message.
Over :class:`~storage.bus.LocalBus` (one process) :attr:`Sharing.shared` is False and every
method returns at once, so ``--workers 1`` pays nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import uuid
from collections.abc import Callable
from typing import Any

from storage.bus import Bus, LocalBus

log = logging.getLogger("rmqproxy.broker")

CHANNEL = "rmqproxy.broker"

Handler = Callable[[str, Any], None]
"""Called with (the sending process's id, the notice's data)."""


def new_worker_id(index: int = 0) -> str:
    """A name for this process, unique across restarts (lease holder, sender of notices)."""
    return f"w{index}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Sharing:
    def __init__(self, bus: Bus, worker_id: str) -> None:
        self.bus = bus
        self.worker_id = worker_id
        self.shared = not isinstance(bus, LocalBus)
        self._wakes: dict[tuple[str, str | None], int | None] = {}
        self._outbox: list[tuple[str, Any]] = []
        self._scheduled = False
        self._handlers: dict[str, Handler] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.received = 0
        """Notices received (tests and metrics)."""

    def start(self) -> None:
        if self.shared and self._unsubscribe is None:
            self._unsubscribe = self.bus.subscribe(CHANNEL, self._on_notice)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_resume(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the bus listens again after losing notices (storage/bus.py)."""
        if self.shared:
            self.bus.on_resume(callback)

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(sender, data)`` for each notice of ``kind`` from another process."""
        self._handlers[kind] = handler

    # -- sending --------------------------------------------------------------------------------

    def wake(self, topic: str, group: str | None, count: int | None) -> None:
        if not self.shared:
            return
        key = (topic, group)
        if key in self._wakes:
            before = self._wakes[key]
            self._wakes[key] = None if before is None or count is None else before + count
        else:
            self._wakes[key] = count
        self._schedule()

    def post(self, kind: str, data: Any) -> None:
        if not self.shared:
            return
        self._outbox.append((kind, data))
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch: list[tuple[str, Any]] = []
        if self._wakes:
            batch.append(("wake", list(self._wakes.items())))
            self._wakes = {}
        batch.extend(self._outbox)
        self._outbox = []
        if not batch:
            return
        try:
            payload = pickle.dumps((self.worker_id, batch), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            log.exception("a notice could not be pickled; dropped")
            return
        post = getattr(self.bus, "post", None)  # a bus that can send without a coroutine (the store process's)
        if post is not None:
            post(CHANNEL, payload)
            return
        task = asyncio.ensure_future(self.bus.publish(CHANNEL, payload))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("publishing notices failed: %s", task.exception())

    # -- receiving ------------------------------------------------------------------------------

    def _on_notice(self, channel: str, payload: bytes) -> None:
        sender, batch = pickle.loads(payload)
        if sender == self.worker_id:
            return  # a bus that echoes our own notices
        self.received += 1
        for kind, data in batch:
            handler = self._handlers.get(kind)
            if handler is None:
                continue
            try:
                handler(sender, data)
            except Exception:
                log.exception("handling a %s notice failed", kind)
