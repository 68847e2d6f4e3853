"""FIFO consumption throughput against a normal group, on the same data, in one run.

For each message-group count (1, 10 and 1,000 by default) a FIFO topic is filled with the same
number of messages spread round robin over that many message groups. Two groups then drain it
with the same raw-gRPC consumers (batch receive, batch ack): a FIFO group (one message of a
message group in flight at a time, consecutive ones may share a batch) and a normal group reading
the same topic without ordering. Prints messages per second and the FIFO / normal ratio, and
writes them to benchmarks/results/fifo.json and fifo.md (--out, --name).

    python -m benchmarks.fifo [--messages 20000] [--consumers 16] [--groups 1,10,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.harness import Server, async_stub, metadata
from benchmarks.report import RESULTS, write_summary
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc

OK = pb.Code.OK


async def fill(address: str, topic: str, messages: int, groups: int, size: int) -> None:
    channel, stub = async_stub(address)
    body = b"x" * size
    async with channel:
        sent = 0
        while sent < messages:
            batch = []
            for i in range(sent, min(sent + 100, messages)):
                message = pb.Message(body=body)
                message.topic.name = topic
                message.system_properties.message_id = f"{uuid.uuid4().hex.upper()}{i:08X}"
                message.system_properties.message_type = pb.MessageType.FIFO
                message.system_properties.message_group = f"group-{i % groups}"
                batch.append(message)
            response = await stub.SendMessage(rpc.SendMessageRequest(messages=batch), metadata=metadata("fill"))
            if response.status.code != OK:
                raise RuntimeError(response.status)
            sent += len(batch)


async def drain(address: str, topic: str, group: str, messages: int, consumers: int) -> float:
    """Seconds the consumers took to receive and ack every message."""
    channel, stub = async_stub(address)
    done = 0
    finished = asyncio.Event()

    async def consume(index: int) -> None:
        nonlocal done
        md = metadata(f"{group}-{index}")
        request = rpc.ReceiveMessageRequest(batch_size=32, auto_renew=False)
        request.group.name = group
        request.message_queue.topic.name = topic
        request.message_queue.id = -1
        request.filter_expression.type = pb.FilterType.TAG
        request.filter_expression.expression = "*"
        request.invisible_duration.FromSeconds(30)
        request.long_polling_timeout.FromSeconds(5)
        while not finished.is_set():
            received = [frame.message async for frame in stub.ReceiveMessage(request, metadata=md, timeout=10)
                        if frame.WhichOneof("content") == "message"]
            if not received:
                continue
            ack = rpc.AckMessageRequest(entries=[rpc.AckMessageEntry(
                message_id=m.system_properties.message_id, receipt_handle=m.system_properties.receipt_handle)
                for m in received])
            ack.group.name = group
            ack.topic.name = topic
            response = await stub.AckMessage(ack, metadata=md)
            done += sum(1 for e in response.entries if e.status.code == OK)
            if done >= messages:
                finished.set()

    async with channel:
        start = time.monotonic()
        tasks = [asyncio.create_task(consume(i)) for i in range(consumers)]
        await finished.wait()
        elapsed = time.monotonic() - start
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def run(messages: int, consumers: int, group_counts: list[int], size: int, out: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data", ("--flush", "async")).start()
        rows = []
        try:
            for groups in group_counts:
                topic = f"fifo-{groups}"
                server.cli("topic", "create", topic, "--type", "fifo", "--queues", "8")
                server.cli("group", "create", f"{topic}-ordered", "--fifo", "--from-beginning")
                server.cli("group", "create", f"{topic}-plain", "--from-beginning")
                await fill(server.address, topic, messages, groups, size)
                plain = await drain(server.address, topic, f"{topic}-plain", messages, consumers)
                ordered = await drain(server.address, topic, f"{topic}-ordered", messages, consumers)
                rows.append((groups, messages / ordered, messages / plain))
                print(f"  {groups} message group(s): FIFO {messages / ordered:,.0f} msg/s, "
                      f"normal {messages / plain:,.0f} msg/s", flush=True)
        finally:
            server.stop()
    lines = ["# FIFO against normal consumption", "",
             f"{messages:,} messages of {size} B on a FIFO topic of 8 queues, drained by {consumers} concurrent "
             "raw-gRPC consumers (receive 32, one ack per batch) as a normal group, then as a FIFO group.", "",
             "| message groups | FIFO msg/s | normal msg/s | FIFO / normal |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {groups:,} | {fifo_rate:,.0f} | {plain_rate:,.0f} | {fifo_rate / plain_rate:.2f} |"
              for groups, fifo_rate, plain_rate in rows]
    write_summary(out, name, {
        "kind": "fifo", "messages": messages, "consumers": consumers, "size": size,
        "rows": [{"message_groups": groups, "fifo_rate": round(fifo_rate, 1), "normal_rate": round(plain_rate, 1),
                  "ratio": round(fifo_rate / plain_rate, 3)} for groups, fifo_rate, plain_rate in rows],
    }, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--consumers", type=int, default=16)
    parser.add_argument("--groups", default="1,10,1000", help="comma-separated message-group counts")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--name", default="fifo", help="file name of the results, without extension")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.consumers, [int(g) for g in args.groups.split(",")], args.size,
                    args.out, args.name))


if __name__ == "__main__":
    main()
