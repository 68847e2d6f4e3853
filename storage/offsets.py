"""The store contract's pull reads and explicit offsets (part of :class:`storage.base.MessageStore`).

Pull consumers (PullMessage, UpdateOffset, GetOffset, QueryOffset) keep their own progress: they
read a queue from an offset they choose, and commit an offset when they like. They share the
group's position with the pop-style consumers of the same group, so both see one truth:

* **reading** (:meth:`OffsetsContract.read_queue`) changes nothing: no delivery, no receipt, no
  invisibility; the group is only named so that a dead letter sent back to another group stays
  out of sight (as pop does);
* **committing** (:meth:`OffsetsContract.commit_offset`) means "everything below this offset is
  done, everything from it on is not": the group's position in that one queue moves there, as
  :meth:`~storage.base.MessageStore.reset_offset` moves it in every queue (pending retries
  forgotten, deliveries in flight still ackable but never redelivered). A pop consumer of the
  group continues from there;
* the offset GetOffset answers is the group's committed offset (the lowest offset not done:
  ``progress().committed_offset``), so after pop consumers received and acked up to N a pull
  consumer resumes at N, and after a commit of N it reads N.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.model import GroupQueueProgress, StoredMessage

if TYPE_CHECKING:  # storage.base builds MessageStore on this contract
    from storage.base import EntryFilter


@dataclass(frozen=True, slots=True)
class QueueRead:
    """What :meth:`OffsetsContract.read_queue` found."""

    messages: list[StoredMessage] = field(default_factory=list)
    next_offset: int = 0
    """Where the next read should start: past the last message examined (found or filtered out),
    or, when the offset asked was out of range, the nearest offset in range."""
    min_offset: int = 0
    max_offset: int = 0
    offset_moved: bool = False
    """The offset asked was below the first stored message or past the end of the queue (the
    reference's OFFSET_ILLEGAL): nothing was read, ``next_offset`` says where to go."""


class OffsetsContract(abc.ABC):
    @abc.abstractmethod
    async def read_queue(self, group: str, topic: str, queue_id: int, offset: int, max_messages: int,
                         accept: EntryFilter | None = None, scan_limit: int | None = None) -> QueueRead:
        """Up to ``max_messages`` stored messages of the queue from ``offset`` on, in offset order,
        that ``accept`` accepts (and that are not dead letters sent back to another group), looking
        at most at ``scan_limit`` entries. Changes nothing. An offset below the queue's first
        stored message or above its end reads nothing and answers ``offset_moved`` (the end itself
        is fine: nothing there yet). TopicNotFound / GroupNotFound / QueueNotFound."""

    @abc.abstractmethod
    async def queue_offset_at(self, topic: str, queue_id: int, at_ms: int) -> int:
        """The first offset of the queue stored at or after ``at_ms`` (the end of the queue if
        none). TopicNotFound / QueueNotFound."""

    @abc.abstractmethod
    async def commit_offset(self, group: str, topic: str, queue_id: int, offset: int,
                            now_ms: int) -> GroupQueueProgress:
        """Move the group's position in one queue to ``offset`` (clamped to the queue's stored
        range), as :meth:`~storage.base.MessageStore.reset_offset` does for every queue, in one
        atomic write; the group's progress in that queue afterwards. TopicNotFound /
        GroupNotFound / QueueNotFound."""
