"""Disk use under a steady produce rate with a short retention: it must level off, not grow.

Starts a server with ``--retention`` (default 10s), sends 1 KiB messages at a fixed rate for a
while, and samples the data directory's size every second. Prints the samples and the verdict:
the size in the last third of the run against the size one retention period in. With no retention
the directory would grow linearly with what was sent (printed beside it).

    python -m benchmarks.retention_disk [--rate 2000] [--seconds 60] [--retention 10s]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Server, async_stub, dir_bytes, metadata, send_request
from rmqproxy.durations import format_duration, parse_duration

MiB = 1024 * 1024


async def produce(address: str, topic: str, rate: int, seconds: float, body: bytes, sent: list[int]) -> None:
    channel, stub = async_stub(address)
    batch = max(1, rate // 50)  # 50 requests a second
    start = time.monotonic()
    async with channel:
        tick = 0
        while time.monotonic() - start < seconds:
            response = await stub.SendMessage(send_request(topic, body, batch, sent[0]), metadata=metadata("disk"))
            if response.status.code != 20000:
                raise RuntimeError(f"send failed: {response.status}")
            sent[0] += batch
            tick += 1
            delay = start + tick / 50 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


async def run(rate: int, seconds: float, retention_ms: int, size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        data = Path(tmp) / "data"
        server = Server(data, ("--retention", format_duration(retention_ms), "--flush", "async")).start()
        try:
            server.cli("topic", "create", "disk-topic", "--queues", "4")
            sent = [0]
            producer = asyncio.create_task(produce(server.address, "disk-topic", rate, seconds, b"x" * size, sent))
            samples: list[tuple[float, int, int]] = []
            begin = time.monotonic()
            while not producer.done():
                await asyncio.sleep(1)
                samples.append((time.monotonic() - begin, sent[0], dir_bytes(data)))
            await producer
        finally:
            server.stop()
    print(f"retention {format_duration(retention_ms)}, {rate} msg/s of {size} B for {seconds:.0f} s")
    print(f"{'t (s)':>6} {'sent':>9} {'sent MiB':>9} {'disk MiB':>9}")
    for t, count, disk in samples[:: max(1, len(samples) // 20)]:
        print(f"{t:6.1f} {count:9d} {count * size / MiB:9.1f} {disk / MiB:9.1f}")
    settle = retention_ms / 1000 * 2
    steady = [disk for t, _, disk in samples if t >= settle]
    if not steady:
        print("run too short to judge: make --seconds at least three retention periods")
        return
    last_third = steady[len(steady) * 2 // 3:]
    print(f"\nsent {samples[-1][1] * size / MiB:.0f} MiB in all; disk after {settle:.0f} s: "
          f"min {min(steady) / MiB:.1f} MiB, max {max(steady) / MiB:.1f} MiB, "
          f"last third max {max(last_third) / MiB:.1f} MiB")
    bounded = max(last_third) <= 1.5 * max(steady[: max(1, len(steady) // 3)]) + 8 * MiB
    print("verdict: disk use is " + ("BOUNDED (levels off)" if bounded else "GROWING"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--retention", type=parse_duration, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="message body bytes")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.retention, args.size))


if __name__ == "__main__":
    main()
