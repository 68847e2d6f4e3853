"""The in-memory store's query indexes of one queue: message id, key and tag -> offsets, ascending
(a queue's offsets grow with store time, so the last ones are the newest)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from storage.model import QueueEntry
from storage.query_contract import entry_keys


def _add(index: dict[str, list[int]], value: str, offset: int) -> None:
    index.setdefault(value, []).append(offset)


def _remove(index: dict[str, list[int]], value: str, offset: int) -> None:
    offsets = index.get(value)
    if offsets and offsets[0] == offset:  # retention removes the oldest first
        del offsets[0]
        if not offsets:
            del index[value]


@dataclass
class QueueIndex:
    ids: dict[str, list[int]] = field(default_factory=dict)
    keys: dict[str, list[int]] = field(default_factory=dict)
    tags: dict[str, list[int]] = field(default_factory=dict)

    def add(self, message_id: str, entry: QueueEntry, offset: int) -> None:
        _add(self.ids, message_id, offset)
        for key in entry_keys(entry.properties):
            _add(self.keys, key, offset)
        if entry.tag is not None:
            _add(self.tags, entry.tag, offset)

    def remove(self, removed: Iterable[tuple[str, QueueEntry]]) -> None:
        """Drop the entries of messages retention removes (oldest first, in offset order)."""
        for message_id, entry in removed:
            _remove(self.ids, message_id, entry.offset)
            for key in entry_keys(entry.properties):
                _remove(self.keys, key, entry.offset)
            if entry.tag is not None:
                _remove(self.tags, entry.tag, entry.offset)
