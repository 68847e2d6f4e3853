"""Leases held in the memory of the process that runs the store: the implementation the memory
and RocksDB backends share (both are driven by one worker, so these steps need no locks).

A lease names a background job that must run in one place at a time (timers, revival, retention,
transaction checks). Leases are deliberately not persisted: they only say which live worker does
a job now, and after a restart of the store every worker is new anyway, so a job left without a
holder is picked up at the next attempt instead of waiting out a lease of the dead.
"""

from __future__ import annotations


class LeaseTable:
    """lease name -> (holder, expires_at_ms)."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, int]] = {}

    def acquire(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> bool:
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now_ms:
            return False
        self._leases[name] = (holder, now_ms + ttl_ms)
        return True

    def release(self, name: str, holder: str) -> None:
        current = self._leases.get(name)
        if current is not None and current[0] == holder:
            del self._leases[name]


class LeaseMixin:
    """``acquire_lease`` and ``release_lease`` of the store contract, on a :class:`LeaseTable`."""

    _lease_table: LeaseTable | None = None

    def _table(self) -> LeaseTable:
        if self._lease_table is None:
            self._lease_table = LeaseTable()
        return self._lease_table

    async def acquire_lease(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> bool:
        return self._table().acquire(name, holder, ttl_ms, now_ms)

    async def release_lease(self, name: str, holder: str) -> None:
        self._table().release(name, holder)
