"""Values that cross the store boundary: scheduled messages (timers) and transactional half messages.

Part of :mod:`storage.model`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from storage.pickling import pickle_dataclasses_by_fields

if TYPE_CHECKING:
    from storage.model import StoredMessage


@dataclass(frozen=True, slots=True)
class Fired:
    """A scheduled message that fell due and was appended to its queue."""

    topic: str
    queue_id: int
    offset: int
    message_id: str
    deliver_at_ms: int


@dataclass(frozen=True, slots=True)
class FireResult:
    fired: list[Fired]
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class TimerStats:
    pending: int
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class HalfMessage:
    """A transactional message waiting for its producer's verdict."""

    topic: str
    transaction_id: int
    message: StoredMessage
    """Its content (queue id and offset not assigned yet: 0 and -1)."""
    checks: int
    """How often its producer was asked so far."""
    next_check_ms: int


@dataclass(frozen=True, slots=True)
class HalfStats:
    pending: int
    next_check_ms: int | None


class TransactionEnd(NamedTuple):
    """What :meth:`MessageStore.end_transaction` did: the half message's id and, when committed,
    its offset in its queue (None: rolled back, or its topic is gone)."""

    message_id: str
    offset: int | None


class DueChecks(NamedTuple):
    """Half messages due for a check, and when the next check after those falls due."""

    due: list[HalfMessage]
    next_check_ms: int | None


pickle_dataclasses_by_fields(globals(), __name__)
