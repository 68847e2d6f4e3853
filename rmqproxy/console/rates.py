"""The overview's hour of message rates, sampled from the server's own counters.

Every ``interval_ms`` the sampler reads the totals the metrics recorder keeps (messages in per
topic, out per group; rmqproxy/metrics/recorder.py) into a ring of one hour. Per-topic and
per-group counts are kept only every ``KEY_EVERY`` samples (a few snapshots, not one per sample:
10,000 topics times 360 samples would be millions of entries); the busiest lists compare now with
the oldest snapshot still within the hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import dataclass

from rmqproxy.clock import Sleeper
from rmqproxy.metrics.recorder import MetricsRecorder

INTERVAL_MS = 10_000
WINDOW_MS = 3600_000
KEY_EVERY = 30
"""Samples between per-topic / per-group snapshots (5 minutes at 10 s)."""


@dataclass(frozen=True)
class Sample:
    at_ms: int
    messages_in: int
    messages_out: int


@dataclass(frozen=True)
class Snapshot:
    at_ms: int
    by_topic: dict[str, int]
    by_group: dict[str, int]


def _by_topic(recorder: MetricsRecorder) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (topic, _, system), count in recorder.messages_in.items():
        if system == "false":
            totals[topic] = totals.get(topic, 0) + count
    return totals


def _by_group(recorder: MetricsRecorder) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (_, group, _, system), count in recorder.messages_out.items():
        if system == "false":
            totals[group] = totals.get(group, 0) + count
    return totals


class RateHistory:
    def __init__(self, recorder: MetricsRecorder, clock: Sleeper, interval_ms: int = INTERVAL_MS) -> None:
        self._recorder = recorder
        self._clock = clock
        self._interval_ms = interval_ms
        self._samples: deque[Sample] = deque(maxlen=WINDOW_MS // interval_ms + 1)
        self._snapshots: deque[Snapshot] = deque(maxlen=WINDOW_MS // (interval_ms * KEY_EVERY) + 2)
        self._count = 0
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run(), name="console-rates")

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                async with self._clock.deadline(self._clock.now_ms() + self._interval_ms):
                    await self._stopped.wait()
            except TimeoutError:
                self.sample()

    def sample(self) -> None:
        recorder = self._recorder
        now = self._clock.now_ms()
        self._samples.append(Sample(now, sum(recorder.messages_in.values()), sum(recorder.messages_out.values())))
        if self._count % KEY_EVERY == 0:
            self._snapshots.append(Snapshot(now, _by_topic(recorder), _by_group(recorder)))
        self._count += 1

    def series(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Messages per second in and out, per interval: (end of interval ms, rate) pairs."""
        rates_in: list[tuple[int, float]] = []
        rates_out: list[tuple[int, float]] = []
        samples = list(self._samples)
        for before, after in itertools.pairwise(samples):
            seconds = max((after.at_ms - before.at_ms) / 1000, 0.001)
            rates_in.append((after.at_ms, (after.messages_in - before.messages_in) / seconds))
            rates_out.append((after.at_ms, (after.messages_out - before.messages_out) / seconds))
        return rates_in, rates_out

    def busiest(self, most: int = 10) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Topics by messages in and groups by messages out since the oldest snapshot in the hour."""
        now_topics, now_groups = _by_topic(self._recorder), _by_group(self._recorder)
        since = self._since() or Snapshot(0, {}, {})

        def top(now: dict[str, int], then: dict[str, int]) -> list[tuple[str, int]]:
            deltas = [(name, count - then.get(name, 0)) for name, count in now.items()]
            return sorted((d for d in deltas if d[1] > 0), key=lambda d: (-d[1], d[0]))[:most]

        return top(now_topics, since.by_topic), top(now_groups, since.by_group)

    def _since(self) -> Snapshot | None:
        """The oldest snapshot within the hour."""
        start = self._clock.now_ms() - WINDOW_MS
        return next((s for s in self._snapshots if s.at_ms >= start), None)

    def since_ms(self) -> int | None:
        found = self._since()
        return found.at_ms if found is not None else None
