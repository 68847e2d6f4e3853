"""Server-side filtering over a large backlog: how fast the filter skips, and how long a rare-tag
receive takes.

Fills a topic with N messages tagged ``common`` (1,000,000 by default) and then one tagged ``rare``
(property ``kind=rare``). Groups created before the fill then receive with a tag filter
(``rare``) and with a SQL92 filter (``kind = 'rare'``): each receive must skip the whole backlog,
a slice at a time, without decoding bodies. Prints the receive latency and the skip rate
(messages per second the filter passed over), and the wake-up latency of a caught-up rare-tag
consumer when another rare message arrives; writes them to benchmarks/results/filter.json and
filter.md (--out, --name).

    python -m benchmarks.filter [--messages 1000000] [--size 256]
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
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc


def build(topic: str, index: int, tag: str, body: bytes) -> pb.Message:
    message = pb.Message(body=body)
    message.topic.name = topic
    message.system_properties.message_id = f"{uuid.uuid4().hex.upper()}{index:08X}"
    message.system_properties.message_type = pb.MessageType.NORMAL
    message.system_properties.tag = tag
    message.user_properties["kind"] = tag
    return message


async def fill(stub: rpc_grpc.MessagingServiceStub, topic: str, count: int, body: bytes) -> float:
    start = time.monotonic()
    sent = 0
    semaphore = asyncio.Semaphore(8)

    async def send(first: int, size: int) -> None:
        async with semaphore:
            request = rpc.SendMessageRequest(messages=[build(topic, first + i, "common", body) for i in range(size)])
            response = await stub.SendMessage(request, metadata=metadata("fill"))
            if response.status.code != pb.Code.OK:
                raise RuntimeError(response.status)

    tasks = []
    while sent < count:
        size = min(500, count - sent)
        tasks.append(asyncio.create_task(send(sent, size)))
        sent += size
        if len(tasks) >= 64:
            await asyncio.gather(*tasks)
            tasks = []
            print(f"\r  filled {sent:,} / {count:,}", end="", flush=True)
    await asyncio.gather(*tasks)
    print()
    return time.monotonic() - start


async def receive_one(stub: rpc_grpc.MessagingServiceStub, topic: str, group: str,
                      expression: pb.FilterExpression) -> tuple[float, int]:
    request = rpc.ReceiveMessageRequest(batch_size=32, auto_renew=False, filter_expression=expression)
    request.group.name = group
    request.message_queue.topic.name = topic
    request.message_queue.id = -1
    request.invisible_duration.FromSeconds(60)
    request.long_polling_timeout.FromSeconds(20)
    start = time.monotonic()
    frames = [f async for f in stub.ReceiveMessage(request, metadata=metadata(group), timeout=30)]
    return time.monotonic() - start, sum(1 for f in frames if f.WhichOneof("content") == "message")


async def run(count: int, size: int, out: Path, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data", ("--flush", "async")).start()
        try:
            server.cli("topic", "create", "filtered", "--queues", "8")
            for group in ("by-tag", "by-sql", "waiting"):
                server.cli("group", "create", group, "--from-beginning")
            channel, stub = async_stub(server.address)
            async with channel:
                fill_s = await fill(stub, "filtered", count, b"x" * size)
                rare = rpc.SendMessageRequest(messages=[build("filtered", count, "rare", b"rare")])
                await stub.SendMessage(rare, metadata=metadata("fill"))
                tag = pb.FilterExpression(type=pb.FilterType.TAG, expression="rare")
                sql = pb.FilterExpression(type=pb.FilterType.SQL, expression="kind = 'rare'")
                rows = []
                for group, filter_expression in (("by-tag", tag), ("by-sql", sql)):
                    latency, got = await receive_one(stub, "filtered", group, filter_expression)
                    rows.append((group, filter_expression.expression, got, latency, count / latency))
                # A caught-up consumer waiting when the next rare message arrives.
                await receive_one(stub, "filtered", "waiting", tag)
                waiting = asyncio.create_task(receive_one(stub, "filtered", "waiting", tag))
                await asyncio.sleep(1)
                sent_at = time.monotonic()
                await stub.SendMessage(rpc.SendMessageRequest(messages=[build("filtered", count + 1, "rare", b"r")]),
                                       metadata=metadata("fill"))
                await waiting
                wake_ms = (time.monotonic() - sent_at) * 1000
        finally:
            server.stop()
    lines = ["# Filtering over a large backlog", "",
             f"{count:,} messages of {size} B tagged `common` (filled in {fill_s:.0f} s), then one tagged `rare`; "
             "one receive (batch 32) per filter, from the start of the backlog.", "",
             "| filter | received | receive latency | messages skipped per second |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {'tag' if group == 'by-tag' else 'SQL92'} `{expression}` | {got} | {latency * 1000:,.0f} ms "
              f"| {rate:,.0f} |" for group, expression, got, latency, rate in rows]
    lines += ["", f"A caught-up rare-tag consumer got the next rare message {wake_ms:.0f} ms after it was sent."]
    write_summary(out, name, {
        "kind": "filter", "messages": count, "size": size, "fill_seconds": round(fill_s, 1),
        "rows": [{"group": group, "expression": expression, "received": got, "latency_ms": round(latency * 1000, 1),
                  "skipped_per_second": round(rate)} for group, expression, got, latency, rate in rows],
        "wake_ms": round(wake_ms, 1),
    }, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--name", default="filter", help="file name of the results, without extension")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.size, args.out, args.name))


if __name__ == "__main__":
    main()
