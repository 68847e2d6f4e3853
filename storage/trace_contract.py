"""The store contract's message trace records (part of :class:`storage.base.MessageStore`).

A trace record is an opaque byte string the server writes about one stored message (produced,
delivered, acknowledged...: rmqproxy/broker/trace.py encodes them). The store keeps a message's
records beside it, in the order they were added, and removes them with the message: by
retention, in the same write, and with its topic. Records for a message no longer (or never)
stored are dropped. Adding records is its own write, after the change it describes: a trace is
an observation, best effort, not part of the message's state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class TraceEntry(NamedTuple):
    topic: str
    queue_id: int
    offset: int
    record: bytes


class TraceContract:
    async def add_traces(self, entries: Sequence[TraceEntry]) -> None:
        """Append each record to its message's trace (one write; unknown topics, queues and
        messages are skipped)."""
        raise NotImplementedError

    async def message_trace(self, topic: str, queue_id: int, offset: int) -> list[bytes]:
        """The message's trace records, oldest first; [] if none or no such message."""
        raise NotImplementedError
