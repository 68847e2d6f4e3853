"""The benchmark's peers (NATS JetStream, RabbitMQ): a private server starts, its drivers send and
receive through it, and it stops without leaving its process behind. Skipped only where the
server's Debian package is not installed."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from benchmarks.drivers import Driver, Target, make_driver
from benchmarks.peers import NatsServer, RabbitServer, nats_setup, rabbit_setup

TOPICS = ("bench.peers-a", "bench.peers-b")  # a dot, which NATS stream names may not hold
GROUP = "bench.group"
MESSAGES = 100
IN_CI = os.environ.get("CI") == "true"
"""In CI `make test` installs both servers (make peers): missing there is a failure, not a skip."""

Setup = Callable[[str, tuple[str, ...], str], Awaitable[None]]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _round_trip(kind: str, address: str, setup: Setup) -> None:
    await setup(address, TOPICS, GROUP)
    target = Target(kind=kind, address=address, topics=TOPICS, group=GROUP, size=256)
    drivers = [make_driver(target) for _ in range(4)]
    await asyncio.gather(*(driver.connect() for driver in drivers))
    batcher, single, *consumers = drivers
    try:
        start = time.time_ns()

        async def batches() -> None:
            for _ in range(5):
                await batcher.produce(10)

        async def singles() -> None:
            for _ in range(50):
                await single.produce(1)

        await asyncio.gather(batches(), singles())  # two drivers at once, as the load generator runs them
        sent = time.time_ns()

        received: list[int] = []

        async def drain(driver: Driver) -> None:
            deadline = time.monotonic() + 30
            while len(received) < MESSAGES and time.monotonic() < deadline:
                received.extend(await driver.consume(16))

        await asyncio.gather(*(drain(driver) for driver in consumers))
        assert len(received) == MESSAGES
        assert all(start <= stamp <= sent for stamp in received)
        # Nothing more comes: each message was delivered once and its ack held.
        leftovers = await asyncio.gather(*(driver.consume(16) for driver in consumers for _ in TOPICS))
        assert leftovers == [[]] * (len(consumers) * len(TOPICS))
    finally:
        await asyncio.gather(*(driver.close() for driver in drivers))


@pytest.mark.skipif(shutil.which("nats-server") is None and not IN_CI, reason="nats-server is not installed")
async def test_nats_jetstream_round_trip(tmp_path: Path) -> None:
    for run in range(2):  # a second server in the same process, as a benchmark run starts them
        server = NatsServer(tmp_path / f"nats-{run}").start()
        pid = server.pid()
        try:
            await _round_trip("nats", server.address, nats_setup)
        finally:
            server.stop()
        assert _gone(pid)


@pytest.mark.skipif(shutil.which("rabbitmq-server") is None and not IN_CI, reason="rabbitmq-server is not installed")
@pytest.mark.slow
async def test_rabbitmq_round_trip(tmp_path: Path) -> None:
    for run in range(2):
        server = RabbitServer(tmp_path / f"rabbit-{run}").start()
        pid = server.pid()
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "beam.smp"
        try:
            await _round_trip("rabbitmq", server.address, rabbit_setup)
        finally:
            server.stop()
        assert _gone(pid)
        assert server.epmd is not None and server.epmd.poll() is not None
