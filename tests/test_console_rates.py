"""The overview's hour of rates (rmqproxy/console/rates.py) on a fake clock: what the sampler keeps
and how it turns the metrics recorder's counters into rates and busiest lists."""

from __future__ import annotations

from rmqproxy.clock import FakeClock
from rmqproxy.console.rates import INTERVAL_MS, WINDOW_MS, RateHistory
from rmqproxy.metrics.names import flag, is_system_topic
from rmqproxy.metrics.recorder import MetricsRecorder


def count_in(recorder: MetricsRecorder, topic: str, n: int) -> None:
    key = (topic, "normal", flag(is_system_topic(topic)))  # as the recorder keys it
    recorder.messages_in[key] = recorder.messages_in.get(key, 0) + n


def count_out(recorder: MetricsRecorder, group: str, topic: str, n: int) -> None:
    key = (topic, group, "false", "false")
    recorder.messages_out[key] = recorder.messages_out.get(key, 0) + n


async def test_rates_per_interval_and_the_busiest_over_the_hour() -> None:
    clock, recorder = FakeClock(), MetricsRecorder()
    history = RateHistory(recorder, clock)
    history.start()
    await clock.settle()  # the sampler waits for its first interval
    try:
        count_in(recorder, "orders", 100)
        count_in(recorder, "%DLQ%billing", 7)  # system topics are not among the busiest
        count_out(recorder, "billing", "orders", 50)
        await clock.advance(INTERVAL_MS)
        count_in(recorder, "audit", 20)
        await clock.advance(INTERVAL_MS)
        rates_in, rates_out = history.series()
        assert [rate for _, rate in rates_in] == [10.7, 2.0]
        assert [rate for _, rate in rates_out] == [5.0, 0.0]
        topics, groups = history.busiest()
        assert topics == [("orders", 100), ("audit", 20)]
        assert groups == [("billing", 50)]
    finally:
        await history.stop()


async def test_an_hour_later_the_ring_holds_an_hour_and_the_busiest_forget_the_past() -> None:
    clock, recorder = FakeClock(), MetricsRecorder()
    history = RateHistory(recorder, clock)
    history.start()
    await clock.settle()  # the sampler waits for its first interval
    try:
        count_in(recorder, "old", 1000)
        for _ in range(WINDOW_MS // INTERVAL_MS + 40):
            await clock.advance(INTERVAL_MS)
        count_in(recorder, "new", 5)
        await clock.advance(INTERVAL_MS)
        rates_in, _ = history.series()
        assert len(rates_in) == WINDOW_MS // INTERVAL_MS
        assert rates_in[0][0] >= clock.now_ms() - WINDOW_MS
        topics, _ = history.busiest()
        assert topics == [("new", 5)]
    finally:
        await history.stop()
