"""Scheduled-message timers: how late they fire, how many per second, and what pending ones cost.

Precision run: schedules N messages (100,000 by default) due evenly over a window (60 s), starting
once they are all sent, while raw-gRPC consumers long-poll the topic. Lateness of a message is
(when a consumer received it) - (its due time): an upper bound of (first receivable - due), since
it includes the receive round trip. Prints p50 / p99 / max lateness and the rate timers fired at.

Memory run (``--pending``): schedules N messages due in an hour and reports the resident memory of
the server and of its store process (where RocksDB lives) before and after: pending timers live on
disk, not in memory.

Each run writes its figures to benchmarks/results/ (timers.json and .md, timers-pending.json and
.md; --out, --name).

    python -m benchmarks.timers [--timers 100000] [--window 60]
    python -m benchmarks.timers --pending 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.harness import Server, async_stub, metadata
from benchmarks.report import RESULTS, write_summary
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

MiB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    """Resident bytes of the server process and of its descendants (the store process)."""

    server: int
    store: int

    @property
    def total(self) -> int:
        return self.server + self.store

    def mib(self) -> dict[str, float]:
        return {"server": round(self.server / MiB, 1), "store": round(self.store / MiB, 1),
                "total": round(self.total / MiB, 1)}

    def text(self) -> str:
        return f"{self.total / MiB:.0f} MiB (server {self.server / MiB:.0f} + store {self.store / MiB:.0f})"


def memory(pid: int) -> Memory:
    server = psutil.Process(pid)
    store = 0
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            store += child.memory_info().rss
    return Memory(server.memory_info().rss, store)


def peak(a: Memory, b: Memory) -> Memory:
    return Memory(max(a.server, b.server), max(a.store, b.store))


def scheduled(topic: str, index: int, due_ms: int) -> pb.Message:
    message = pb.Message(body=b"t" * 128)
    message.topic.name = topic
    message.system_properties.message_id = f"{uuid.uuid4().hex.upper()}{index:08X}"
    message.system_properties.message_type = pb.MessageType.DELAY
    message.system_properties.delivery_timestamp.FromMilliseconds(due_ms)
    return message


async def schedule(stub: rpc_grpc.MessagingServiceStub, topic: str, dues: list[int]) -> float:
    """Send one message per due time, 200 per request, 8 requests at a time; seconds taken."""
    start = time.monotonic()
    semaphore = asyncio.Semaphore(8)

    async def send(first: int) -> None:
        async with semaphore:
            request = rpc.SendMessageRequest(messages=[scheduled(topic, first + i, due)
                                                       for i, due in enumerate(dues[first:first + 200])])
            response = await stub.SendMessage(request, metadata=metadata("timers"))
            if response.status.code != pb.Code.OK:
                raise RuntimeError(response.status)

    await asyncio.gather(*(send(first) for first in range(0, len(dues), 200)))
    return time.monotonic() - start


async def consume(stub: rpc_grpc.MessagingServiceStub, topic: str, group: str, expected: int,
                  lateness: list[int], consumers: int) -> None:
    done = asyncio.Event()

    async def one(index: int) -> None:
        md = metadata(f"{group}-{index}")
        request = rpc.ReceiveMessageRequest(batch_size=32, auto_renew=False)
        request.group.name = group
        request.message_queue.topic.name = topic
        request.message_queue.id = -1
        request.filter_expression.type = pb.FilterType.TAG
        request.filter_expression.expression = "*"
        request.invisible_duration.FromSeconds(60)
        request.long_polling_timeout.FromSeconds(5)
        while not done.is_set():
            messages = [f.message async for f in stub.ReceiveMessage(request, metadata=md, timeout=10)
                        if f.WhichOneof("content") == "message"]
            now = time.time_ns() // 1_000_000
            if not messages:
                continue
            for message in messages:
                lateness.append(now - message.system_properties.delivery_timestamp.ToMilliseconds())
            ack = rpc.AckMessageRequest(entries=[rpc.AckMessageEntry(
                message_id=m.system_properties.message_id, receipt_handle=m.system_properties.receipt_handle)
                for m in messages])
            ack.group.name = group
            ack.topic.name = topic
            await stub.AckMessage(ack, metadata=md)
            if len(lateness) >= expected:
                done.set()

    tasks = [asyncio.create_task(one(i)) for i in range(consumers)]
    await done.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def precision(count: int, window_s: float, consumers: int, out: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data").start()
        try:
            server.cli("topic", "create", "timers", "--type", "delay", "--queues", "8")
            server.cli("group", "create", "timer-readers")
            channel, stub = async_stub(server.address)
            async with channel:
                # Start the window once everything is sent (sending takes a few seconds).
                start_ms = time.time_ns() // 1_000_000 + 5_000 + count // 10
                dues = [start_ms + int(i * window_s * 1000 / count) for i in range(count)]
                lateness: list[int] = []
                reader = asyncio.create_task(consume(stub, "timers", "timer-readers", count, lateness, consumers))
                send_s = await schedule(stub, "timers", dues)
                highest = memory(server.pid())
                while not reader.done():
                    await asyncio.sleep(1)
                    highest = peak(highest, memory(server.pid()))
                await reader
        finally:
            server.stop()
    lateness.sort()
    quantiles = statistics.quantiles(lateness, n=1000)
    figures = {"p50": quantiles[499], "p99": quantiles[989], "max": lateness[-1], "min": lateness[0]}
    lines = ["# Timer precision", "",
             f"{count:,} timers due over {window_s:.0f} s ({count / window_s:,.0f}/s), sent in {send_s:.1f} s "
             f"({count / send_s:,.0f} msg/s), {consumers} long-polling raw-gRPC consumers. Lateness = (received by a "
             "consumer) - (due): an upper bound of (first receivable) - (due).", "",
             "| p50 | p99 | max | min |", "| ---: | ---: | ---: | ---: |",
             "| " + " | ".join(f"{figures[k]:.0f} ms" for k in ("p50", "p99", "max", "min")) + " |", "",
             f"Peak resident memory: {highest.text()} (each the highest sampled, once a second)."]
    write_summary(out, name, {
        "kind": "timers", "timers": count, "window_s": window_s, "send_seconds": round(send_s, 2),
        "consumers": consumers, "lateness_ms": {k: round(v, 1) for k, v in figures.items()},
        "peak_rss_mib": highest.mib(),
    }, lines)


async def pending(count: int, out: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data", ("--flush", "async")).start()
        try:
            server.cli("topic", "create", "timers", "--type", "delay", "--queues", "8")
            before = memory(server.pid())
            channel, stub = async_stub(server.address)
            async with channel:
                due = time.time_ns() // 1_000_000 + 3600_000
                send_s = await schedule(stub, "timers", [due + i for i in range(count)])
            await asyncio.sleep(2)
            after = memory(server.pid())
            server.cli("topic", "describe", "timers")
        finally:
            server.stop()
    per_timer = (after.total - before.total) / count
    lines = ["# Pending timers and memory", "",
             f"{count:,} scheduled messages due in an hour, sent in {send_s:.1f} s ({count / send_s:,.0f} msg/s, "
             "--flush async); resident memory 2 s after the last send.", "",
             "| | server MiB | store process MiB | total MiB |", "| --- | ---: | ---: | ---: |",
             f"| before | {before.server / MiB:.0f} | {before.store / MiB:.0f} | {before.total / MiB:.0f} |",
             f"| {count:,} pending | {after.server / MiB:.0f} | {after.store / MiB:.0f} | {after.total / MiB:.0f} |",
             "", f"About {per_timer:.1f} bytes per pending timer, server and store process together."]
    write_summary(out, name, {
        "kind": "timers-pending", "pending": count, "send_seconds": round(send_s, 2),
        "rss_before_mib": before.mib(), "rss_after_mib": after.mib(), "bytes_per_timer": round(per_timer, 1),
    }, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=60, help="seconds over which the timers fall due")
    parser.add_argument("--consumers", type=int, default=8)
    parser.add_argument("--pending", type=int, help="instead: schedule this many for later, report memory")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--name", help="file name of the results, without extension (timers or timers-pending)")
    args = parser.parse_args()
    if args.pending:
        asyncio.run(pending(args.pending, args.out, args.name or "timers-pending"))
    else:
        asyncio.run(precision(args.timers, args.window, args.consumers, args.out, args.name or "timers"))


if __name__ == "__main__":
    main()
