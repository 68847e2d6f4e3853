"""Deliveries the server keeps invisible on a push consumer's behalf (``auto_renew``).

Push consumers do not choose an invisible duration: the server gives a short one and renews it
while the consumer is alive, so a consumer that dies gives its messages back quickly while a
slow but live one keeps them. Renewal keeps the receipt's generation, so the handle the client
holds stays valid. When the client acks or changes the invisibility itself, or goes away, the
entry leaves this tracker.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from storage.model import Receipt

_Key = tuple[int, int, int, int]  # group id, topic id, queue id, offset


@dataclass
class Renewal:
    client_id: str
    group: str
    topic: str
    receipt: Receipt
    visible_at_ms: int


def _key(receipt: Receipt) -> _Key:
    return receipt.group_id, receipt.topic_id, receipt.queue_id, receipt.offset


class RenewalTracker:
    def __init__(self) -> None:
        self._entries: dict[_Key, Renewal] = {}
        self._by_client: dict[str, set[_Key]] = {}
        self._heap: list[tuple[int, _Key]] = []
        """(visible_at, key), lazily cleaned: an item whose time no longer matches is stale."""

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, renewal: Renewal) -> None:
        key = _key(renewal.receipt)
        self.discard(renewal.receipt)
        self._entries[key] = renewal
        self._by_client.setdefault(renewal.client_id, set()).add(key)
        heapq.heappush(self._heap, (renewal.visible_at_ms, key))

    def get(self, receipt: Receipt) -> Renewal | None:
        """The entry renewing this delivery, if any."""
        return self._entries.get(_key(receipt))

    def discard(self, receipt: Receipt) -> None:
        """Stop renewing this delivery (whatever generation the receipt carries)."""
        entry = self._entries.pop(_key(receipt), None)
        if entry is not None:
            keys = self._by_client.get(entry.client_id)
            if keys is not None:
                keys.discard(_key(receipt))
                if not keys:
                    del self._by_client[entry.client_id]

    def renewed(self, renewal: Renewal, visible_at_ms: int) -> None:
        key = _key(renewal.receipt)
        if self._entries.get(key) is renewal:
            renewal.visible_at_ms = visible_at_ms
            heapq.heappush(self._heap, (visible_at_ms, key))

    def due(self, by_ms: int) -> list[Renewal]:
        """Entries that become visible at or before ``by_ms`` (they stay tracked)."""
        result = []
        while self._heap and self._heap[0][0] <= by_ms:
            visible_at, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is not None and entry.visible_at_ms == visible_at:
                result.append(entry)
        return result

    def next_visible_at(self) -> int | None:
        while self._heap:
            visible_at, key = self._heap[0]
            entry = self._entries.get(key)
            if entry is not None and entry.visible_at_ms == visible_at:
                return visible_at
            heapq.heappop(self._heap)
        return None

    def take_client(self, client_id: str) -> list[Renewal]:
        """Remove and return everything renewed for a client."""
        keys = self._by_client.pop(client_id, set())
        return [entry for key in keys if (entry := self._entries.pop(key, None)) is not None]
