"""A change of invisibility that does not count as an attempt (ChangeInvisibleDuration.suspend)."""

from __future__ import annotations

from storage.base import MessageStore, dlq_topic_name
from storage.model import TopicType
from storage.testing.support import INVISIBLE, T0, Cases


class SuspendCases(Cases):
    async def test_a_suspended_delivery_comes_back_with_the_same_attempt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (first,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        assert first.attempt == 1
        await store.change_invisibility("g", "t", first.receipt, 1000, T0 + 1, suspend=True)
        assert (await store.revive_expired(T0 + 1001, 100)).revived != []
        (again,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 1002)
        assert again.attempt == 1  # put off, not failed
        # An ordinary change of invisibility still counts.
        await store.change_invisibility("g", "t", again.receipt, 1000, T0 + 1003)
        await store.revive_expired(T0 + 2003, 100)
        (third,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 2004)
        assert third.attempt == 2

    async def test_suspensions_do_not_use_up_max_attempts(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        now = T0
        for _ in range(4):  # more suspensions than the 2 attempts allowed
            (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, now)
            await store.change_invisibility("g", "t", popped.receipt, 10, now + 1, suspend=True)
            result = await store.revive_expired(now + 11, 100, {"g": 2})
            assert [r.dead_letter_topic for r in result.revived] == [None]
            now += 100
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, now)
        assert popped.attempt == 1
        assert await store.get_topic(dlq_topic_name("g")) is None
