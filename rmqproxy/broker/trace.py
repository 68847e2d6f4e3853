"""Message trace: what the server records of each message's life, kept by the store beside the
message (storage/trace_contract.py) and removed with it.

The broker tells its :class:`Tracer` where a message changes hands: produced (client id, address,
how long the send took) and stored, every delivery (group, consumer client id and address,
attempt), ack, change of invisibility (a nack is one), retry scheduled, dead-lettered, resent,
committed. The default tracer does nothing (``--trace off``). :class:`StoreTracer` buffers the
records and writes them in one store call per batch from a task of its own, so the call it
observes never waits for its trace: under load, records of many calls share one write. A trace
is best effort: records buffered when the process dies are lost, and a failed write is logged and
dropped. At most :data:`MAX_DELIVERY_RECORDS` deliveries are recorded per message and group (the
reference's limit). A message must be in a queue to have a trace: a scheduled message's trace
starts when it falls due, a transactional one's when it is committed; a recalled or rolled back
message leaves none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from storage.base import MessageStore
from storage.errors import StoreError
from storage.model import AppendOutcome, NewMessage, Popped, Receipt, Stored
from storage.query_contract import MessageQuery, QueryBy
from storage.trace_contract import TraceEntry

log = logging.getLogger(__name__)

MAX_DELIVERY_RECORDS = 64
MAX_BUFFERED = 100_000
"""Records waiting for the store beyond this are dropped (and counted in the log): a store that
cannot keep up must not make the server's memory grow."""

PRODUCED = "PRODUCED"
STORED = "STORED"
DELIVERED = "DELIVERED"
ACKED = "ACKED"
INVISIBILITY_CHANGED = "INVISIBILITY_CHANGED"
RETRY_SCHEDULED = "RETRY_SCHEDULED"
DEAD_LETTERED = "DEAD_LETTERED"
RESENT = "RESENT"
COMMITTED = "COMMITTED"


@dataclass(frozen=True, slots=True)
class TraceRecord:
    kind: str
    at_ms: int
    group: str = ""
    client_id: str = ""
    address: str = ""
    attempt: int = 0
    detail: str = ""

    def encode(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in ("", 0) or k in ("kind", "at_ms")},
                          separators=(",", ":")).encode()

    @staticmethod
    def decode(raw: bytes) -> TraceRecord:
        return TraceRecord(**json.loads(raw))


class Tracer:
    """Records nothing (``--trace off``); :class:`StoreTracer` records."""

    def produced(self, topic: str, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 producer: tuple[str, str] | None, seconds: float, now_ms: int) -> None:
        """A send stored these messages; ``producer``: (client id, address)."""

    def delivered(self, group: str, topic: str, popped: Sequence[Popped], client_id: str, address: str,
                  now_ms: int) -> None:
        """A receive handed these messages to a consumer of ``group``."""

    def stored(self, topic: str, queue_id: int, offset: int, detail: str, now_ms: int) -> None:
        """A message entered its queue later than its send (a scheduled message fell due)."""

    def event(self, topic: str, receipt_or_position: Receipt | tuple[int, int], kind: str, now_ms: int, *,
              group: str = "", attempt: int = 0, detail: str = "") -> None:
        """Something happened to the message at that position (or the receipt's)."""

    def by_id(self, topic: str, message_id: str, kind: str, now_ms: int, detail: str = "") -> None:
        """Something happened to the newest stored copy of ``message_id`` (a commit)."""

    async def close(self) -> None:
        """Write what is buffered."""


class StoreTracer(Tracer):
    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self._pending: list[TraceEntry] = []
        self._by_id: list[tuple[str, str, bytes]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def _add(self, entry: TraceEntry) -> None:
        if len(self._pending) >= MAX_BUFFERED:
            self._dropped += 1
            return
        self._pending.append(entry)
        self._kick()

    def _kick(self) -> None:
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def produced(self, topic: str, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 producer: tuple[str, str] | None, seconds: float, now_ms: int) -> None:
        client_id, address = producer or ("", "")
        took = f"send took {seconds * 1000:.1f} ms"
        for outcome in outcomes:
            if isinstance(outcome, Stored):
                position = (topic, outcome.queue_id, outcome.offset)
                self._add(TraceEntry(*position, TraceRecord(PRODUCED, now_ms, client_id=client_id, address=address,
                                                            detail=took).encode()))
                self._add(TraceEntry(*position, TraceRecord(STORED, now_ms).encode()))

    def delivered(self, group: str, topic: str, popped: Sequence[Popped], client_id: str, address: str,
                  now_ms: int) -> None:
        for p in popped:
            if p.attempt <= MAX_DELIVERY_RECORDS:
                self._add(TraceEntry(topic, p.message.queue_id, p.message.offset, TraceRecord(
                    DELIVERED, now_ms, group, client_id, address, p.attempt).encode()))

    def stored(self, topic: str, queue_id: int, offset: int, detail: str, now_ms: int) -> None:
        self._add(TraceEntry(topic, queue_id, offset, TraceRecord(STORED, now_ms, detail=detail).encode()))

    def event(self, topic: str, receipt_or_position: Receipt | tuple[int, int], kind: str, now_ms: int, *,
              group: str = "", attempt: int = 0, detail: str = "") -> None:
        if isinstance(receipt_or_position, Receipt):
            queue_id, offset = receipt_or_position.queue_id, receipt_or_position.offset
        else:
            queue_id, offset = receipt_or_position
        self._add(TraceEntry(topic, queue_id, offset, TraceRecord(kind, now_ms, group, attempt=attempt,
                                                                  detail=detail).encode()))

    def by_id(self, topic: str, message_id: str, kind: str, now_ms: int, detail: str = "") -> None:
        self._by_id.append((topic, message_id, TraceRecord(kind, now_ms, detail=detail).encode()))
        self._kick()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        entries, self._pending = self._pending, []
        by_id, self._by_id = self._by_id, []
        try:
            for topic, message_id, record in by_id:
                found = await self._store.query_messages(topic, MessageQuery(QueryBy.MESSAGE_ID, message_id), 1)
                entries += [TraceEntry(topic, m.queue_id, m.offset, record) for m in found]
            if entries:
                await self._store.add_traces(entries)
        except StoreError as exc:
            log.warning("dropped %d trace records: %s", len(entries), exc)
        if self._dropped:
            log.warning("dropped %d trace records: the store did not keep up", self._dropped)
            self._dropped = 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush()
