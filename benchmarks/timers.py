"""Scheduled-message timers: how late they fire, how many per second, and what pending ones cost.

Precision run: schedules N messages (100,000 by default) due evenly over a window (60 s), starting
once they are all sent, while raw-gRPC consumers long-poll the topic. Lateness of a message is
(when a consumer received it) - (its due time): an upper bound of (first receivable - due), since
it includes the receive round trip. Prints p50 / p99 / max lateness and the rate timers fired at.

Memory run (``--pending``): schedules N messages due in an hour and reports the server's resident
memory before and after: pending timers live on disk, not in memory.

    python -m benchmarks.timers [--timers 100000] [--window 60]
    python -m benchmarks.timers --pending 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.harness import Server, async_stub, metadata
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

MiB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


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


async def precision(count: int, window_s: float, consumers: int) -> None:
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
                peak = rss_bytes(server.pid())
                while not reader.done():
                    await asyncio.sleep(1)
                    peak = max(peak, rss_bytes(server.pid()))
                await reader
        finally:
            server.stop()
    lateness.sort()
    quantiles = statistics.quantiles(lateness, n=1000)
    print(f"\n{count:,} timers due over {window_s:.0f} s ({count / window_s:,.0f}/s), sent in {send_s:.1f} s "
          f"({count / send_s:,.0f} msg/s), {consumers} long-polling consumers")
    print(f"lateness (received - due): p50 {quantiles[499]:.0f} ms, p99 {quantiles[989]:.0f} ms, "
          f"max {lateness[-1]} ms, min {lateness[0]} ms; server peak RSS {peak / MiB:.0f} MiB")


async def pending(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data", ("--flush", "async")).start()
        try:
            server.cli("topic", "create", "timers", "--type", "delay", "--queues", "8")
            before = rss_bytes(server.pid())
            channel, stub = async_stub(server.address)
            async with channel:
                due = time.time_ns() // 1_000_000 + 3600_000
                send_s = await schedule(stub, "timers", [due + i for i in range(count)])
            await asyncio.sleep(2)
            after = rss_bytes(server.pid())
            server.cli("topic", "describe", "timers")
        finally:
            server.stop()
    print(f"\n{count:,} pending timers scheduled in {send_s:.1f} s ({count / send_s:,.0f} msg/s)")
    print(f"server RSS: {before / MiB:.0f} MiB before, {after / MiB:.0f} MiB with them pending "
          f"({(after - before) / count:.1f} bytes per pending timer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--window", type=float, default=60, help="seconds over which the timers fall due")
    parser.add_argument("--consumers", type=int, default=8)
    parser.add_argument("--pending", type=int, help="instead: schedule this many for later, report memory")
    args = parser.parse_args()
    if args.pending:
        asyncio.run(pending(args.pending))
    else:
        asyncio.run(precision(args.timers, args.window, args.consumers))


if __name__ == "__main__":
    main()
