"""Who subscribed to which lite topics (SyncLiteSubscription), and which lite topics may have
something receivable for each consumer group: what a receive of a lite parent looks at.

Kept in memory, per process: clients send their whole set again every 30 s (COMPLETE_ADD), so a
restarted server learns them back within that time.

Readiness hints. A lite consumer may subscribe to thousands of lite topics; looking in each of
them at every receive would cost a store call per lite topic. Instead a lite topic is marked
ready for a group when something may have become receivable in it for that group (an append, a
subscription that starts there, a redelivery falling due, an ack freeing a FIFO message group:
every event that wakes long polls), and unmarked when a receive found less there than it asked
for. A receive looks only at its client's lite topics that are marked (all of them when the hints
cannot be trusted: several processes share the store and their events do not all pass here).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass
class LiteSubscription:
    topic: str
    """The parent topic the client's lite consumer is bound to."""
    lite_topics: set[str] = field(default_factory=set)
    version: int = 0


class LiteSubscriptions:
    def __init__(self) -> None:
        self._by_client: dict[tuple[str, str], LiteSubscription] = {}
        """(client id, group) -> its lite subscription."""
        self._groups: dict[tuple[str, str], dict[str, int]] = {}
        """(parent, lite topic) -> group -> how many of its clients subscribed to the lite topic."""
        self._ready: dict[tuple[str, str], dict[str, int]] = {}
        """(parent, group) -> lite topics that may have something receivable for the group, each
        with the number of the mark (so a receive unmarks only what nothing marked since it looked)."""
        self._marks = itertools.count(1)
        self._versions: dict[tuple[str, str], int] = {}
        """(client id, group) -> the newest SyncLiteSubscription.version applied (kept when the
        set becomes empty, so a late older request cannot bring an unsubscribed set back)."""

    def get(self, client_id: str, group: str) -> LiteSubscription | None:
        return self._by_client.get((client_id, group))

    def items(self) -> list[tuple[tuple[str, str], LiteSubscription]]:
        return list(self._by_client.items())

    def applied_version(self, client_id: str, group: str) -> int | None:
        """The newest version a SyncLiteSubscription of the client and group carried; None if none did."""
        return self._versions.get((client_id, group))

    def replace(self, client_id: str, group: str, parent: str, wanted: set[str], version: int | None) -> set[str]:
        """The client's subscription becomes ``wanted`` (bound to ``parent``); the lite topics added."""
        key = (client_id, group)
        old = self._by_client.get(key)
        before = old.lite_topics if old is not None and old.topic == parent else set()
        if old is not None:
            self._count(old.topic, group, old.lite_topics, -1)
        if version is not None:
            self._versions[key] = version
        sub = LiteSubscription(parent, set(wanted), self._versions.get(key, 0))
        if wanted:
            self._by_client[key] = sub
            self._count(parent, group, wanted, +1)
        else:
            self._by_client.pop(key, None)
        added = wanted - before
        for lite in added:  # their backlog, if any
            self.mark_ready(parent, lite, group)
        return added

    def drop_client(self, client_id: str) -> None:
        for key in [k for k in self._by_client if k[0] == client_id]:
            sub = self._by_client.pop(key)
            self._count(sub.topic, key[1], sub.lite_topics, -1)
        for key in [k for k in self._versions if k[0] == client_id]:
            del self._versions[key]

    def drop_lite(self, parent: str, lite: str) -> list[tuple[str, str]]:
        """The lite topic is gone: every subscription loses it; the (client, group) pairs that had it."""
        dropped = []
        for key, sub in self._by_client.items():
            if sub.topic == parent and lite in sub.lite_topics:
                sub.lite_topics.discard(lite)
                dropped.append(key)
        self._groups.pop((parent, lite), None)
        for (hinted_parent, _), names in self._ready.items():
            if hinted_parent == parent:
                names.pop(lite, None)
        for key in [k for k in dropped if not self._by_client[k].lite_topics]:
            del self._by_client[key]
        return dropped

    def _count(self, parent: str, group: str, names: set[str], delta: int) -> None:
        for lite in names:
            groups = self._groups.setdefault((parent, lite), {})
            groups[group] = groups.get(group, 0) + delta
            if groups[group] <= 0:
                del groups[group]
                if not groups:
                    del self._groups[(parent, lite)]

    def mark_ready(self, parent: str, lite: str, group: str | None) -> None:
        """Something may be receivable in the lite topic: for ``group``, or for every group with a
        subscriber to it."""
        groups = [group] if group is not None else list(self._groups.get((parent, lite), ()))
        for name in groups:
            self._ready.setdefault((parent, name), {})[lite] = next(self._marks)

    def candidates(self, parent: str, group: str, sub: LiteSubscription,
                   trust_hints: bool) -> list[tuple[str, int | None]]:
        """The client's lite topics a receive should look in, by name, with their marks (pass
        them back to :meth:`drained`)."""
        hinted = self._ready.get((parent, group), {})
        if not trust_hints:
            return [(lite, hinted.get(lite)) for lite in sorted(sub.lite_topics)]
        return sorted((lite, mark) for lite, mark in hinted.items() if lite in sub.lite_topics)

    def drained(self, parent: str, group: str, lite: str, mark: int | None) -> None:
        """A receive found less in the lite topic than it asked for: nothing more there for now,
        unless it was marked again since the receive looked (``mark`` is what it saw then)."""
        hinted = self._ready.get((parent, group))
        if hinted is not None and hinted.get(lite) == mark:
            hinted.pop(lite, None)
            if not hinted:
                del self._ready[(parent, group)]
