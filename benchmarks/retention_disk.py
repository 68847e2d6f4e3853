"""Disk use under a steady produce rate with a short retention: it must level off, not grow.

Starts a server with ``--retention`` (default 10s), sends 1 KiB messages at a fixed rate for a
while, and samples the data directory's size every second. Prints the samples and the verdict:
bounded when, over the last third of the run, the size grows at under a quarter of the rate bytes
are sent. With no retention the directory would grow linearly with what was sent (printed beside
it). Writes the samples and
the verdict to benchmarks/results/retention-disk.json and .md (--out, --name).

    python -m benchmarks.retention_disk [--rate 2000] [--seconds 60] [--retention 10s]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Server, async_stub, dir_bytes, metadata, send_request
from benchmarks.report import RESULTS, write_summary
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


async def run(rate: int, seconds: float, retention_ms: int, size: int, out: Path, name: str) -> None:
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
    lines = ["# Disk use under retention", "",
             f"Retention {format_duration(retention_ms)}, {rate:,} msg/s of {size} B for {seconds:.0f} s "
             "(--flush async); the data directory's size sampled every second.", "",
             "| t (s) | sent | sent MiB | disk MiB |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {t:.1f} | {count:,} | {count * size / MiB:.1f} | {disk / MiB:.1f} |"
              for t, count, disk in samples[:: max(1, len(samples) // 20)]]
    settle = retention_ms / 1000 * 2
    steady = [(t, disk) for t, _, disk in samples if t >= settle]
    document: dict[str, object] = {
        "kind": "retention-disk", "rate": rate, "seconds": seconds, "retention_ms": retention_ms, "size": size,
        "samples": [{"t": round(t, 2), "sent": count, "disk_bytes": disk} for t, count, disk in samples],
    }
    last_third = [(t, disk) for t, disk in steady if t >= samples[-1][0] * 2 / 3]
    if len(last_third) < 3:
        lines += ["", "Run too short to judge: make --seconds at least three retention periods."]
        document["verdict"] = None
    else:
        # Disk use levels off when, late in the run, it no longer grows with what is sent: its
        # slope then is a small fraction of the bytes sent per second (RocksDB's files come and go,
        # so single samples go up and down).
        sent_rate = (samples[-1][1] - samples[0][1]) * size / (samples[-1][0] - samples[0][0])
        slope = _slope(last_third)
        bounded = slope < 0.25 * sent_rate
        disks = [disk for _, disk in steady]
        lines += ["", f"Sent {samples[-1][1] * size / MiB:.0f} MiB in all ({sent_rate / MiB:.2f} MiB/s); disk after "
                      f"{settle:.0f} s: min {min(disks) / MiB:.1f} MiB, max {max(disks) / MiB:.1f} MiB; over the last "
                      f"third of the run it grew {slope / MiB:.2f} MiB/s.", "",
                  "Verdict: disk use is " + ("BOUNDED (levels off)." if bounded else
                                             "GROWING. (The first write-ahead log grows to 64 MiB before RocksDB "
                                             "starts a new one: a run must send more than that to tell.)")]
        document.update(verdict="bounded" if bounded else "growing", settled_after_s=settle,
                        steady_min_bytes=min(disks), steady_max_bytes=max(disks),
                        last_third_slope_bytes_per_s=round(slope), sent_bytes_per_s=round(sent_rate))
    write_summary(out, name, document, lines)


def _slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of disk bytes over seconds."""
    mean_t = sum(t for t, _ in points) / len(points)
    mean_d = sum(d for _, d in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (d - mean_d) for t, d in points) / spread if spread else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--retention", type=parse_duration, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="message body bytes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--name", default="retention-disk", help="file name of the results, without extension")
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.retention, args.size, args.out, args.name))


if __name__ == "__main__":
    main()
