"""Leases: one holder at a time per name, until it lets go or its lease runs out."""

from __future__ import annotations

from storage.base import MessageStore
from storage.testing.support import T0, Cases


class LeaseCases(Cases):
    async def test_a_free_lease_is_taken_and_held_against_others_until_it_expires(self, store: MessageStore) -> None:
        assert await store.acquire_lease("timers", "w1", 5000, T0)
        assert not await store.acquire_lease("timers", "w2", 5000, T0 + 1)
        assert not await store.acquire_lease("timers", "w2", 5000, T0 + 4999)
        assert await store.acquire_lease("timers", "w2", 5000, T0 + 5000)  # w1's ran out
        assert not await store.acquire_lease("timers", "w1", 5000, T0 + 5001)

    async def test_the_holder_extends_its_own_lease(self, store: MessageStore) -> None:
        assert await store.acquire_lease("revive", "w1", 1000, T0)
        assert await store.acquire_lease("revive", "w1", 1000, T0 + 900)
        assert not await store.acquire_lease("revive", "w2", 1000, T0 + 1500)  # extended to T0 + 1900
        assert await store.acquire_lease("revive", "w2", 1000, T0 + 1900)

    async def test_leases_of_different_names_are_independent(self, store: MessageStore) -> None:
        assert await store.acquire_lease("timers", "w1", 5000, T0)
        assert await store.acquire_lease("retention", "w2", 5000, T0)
        assert not await store.acquire_lease("retention", "w1", 5000, T0)

    async def test_release_frees_only_the_holders_own_lease(self, store: MessageStore) -> None:
        assert await store.acquire_lease("timers", "w1", 60_000, T0)
        await store.release_lease("timers", "w2")  # not its lease: nothing happens
        assert not await store.acquire_lease("timers", "w2", 60_000, T0 + 1)
        await store.release_lease("timers", "w1")
        assert await store.acquire_lease("timers", "w2", 60_000, T0 + 2)
        await store.release_lease("never-taken", "w1")
