"""The gauges a metrics scrape reads (:meth:`MessageStore.gauges`)."""

from __future__ import annotations

from storage.base import MessageStore
from storage.model import AppendBatch, ConsumerGauge, TopicType
from storage.testing.support import INVISIBLE, T0, Cases


class GaugeCases(Cases):
    async def test_gauges_count_backlog_retries_and_in_flight_per_group_and_topic(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("h", T0 - 1)
        await self.fill(store, "t", 0, range(5), now_ms=T0)
        await self.fill(store, "t", 1, range(5, 8), now_ms=T0 + 10)
        await store.append([AppendBatch("t", 0, [self.later(8, T0 + 60_000), self.half(9, T0 + 6_000)])], T0 + 20)

        nobody = await store.gauges()
        assert (nobody.consumers, nobody.timers, nobody.half_messages) == ([], {"t": 1}, {"t": 1})
        # A group counts where it has a position, or where its consumers read (unknown names skipped).
        (fresh,) = (await store.gauges({"g": ["t"], "nobody": ["t"], "h": ["other"]})).consumers
        assert fresh == ConsumerGauge("g", "t", backlog=8, retry_ready=0, inflight=0, inflight_retry=0,
                                      oldest_ready_ms=T0, oldest_inflight_ms=None)

        await store.pop("g", "t", [0], 3, 1000, T0 + 100)
        await store.revive_expired(T0 + 1100, 100)
        (again,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 1200)
        assert again.attempt == 2
        await store.pop("g", "t", [1], 1, INVISIBLE, T0 + 1300)
        (first,) = await store.pop("h", "t", [1], 1, INVISIBLE, T0 + 1400)
        await store.ack("h", "t", first.receipt, T0 + 1500)
        gauges = {(c.group, c.topic): c for c in (await store.gauges()).consumers}
        assert gauges == {
            ("g", "t"): ConsumerGauge("g", "t", backlog=4, retry_ready=2, inflight=1, inflight_retry=1,
                                      oldest_ready_ms=T0, oldest_inflight_ms=T0 + 1200),
            ("h", "t"): ConsumerGauge("h", "t", backlog=7, retry_ready=0, inflight=0, inflight_retry=0,
                                      oldest_ready_ms=T0, oldest_inflight_ms=None),
        }
        await store.delete_group("h")
        assert [c.group for c in (await store.gauges({"h": ["t"]})).consumers] == ["g"]
