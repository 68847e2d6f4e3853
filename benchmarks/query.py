"""Message query latency with many stored messages: the indexes make it independent of the size.

Fills two RocksDB data directories directly through the store (``RocksDBStore.append`` in batches,
the same write path a send takes, indexes included; far faster than sending through gRPC), a small
one and a large one, then starts a server on each and times ``rmqproxy.admin.v1.Messages`` calls
over gRPC: by message id, by key (10 matches), by tag (64 of many), by a store-time window and the
newest 1,024. Prints p50 / p99 per kind and size, and the ratio large / small in one run.

    python -m benchmarks.query [--messages 10000000] [--small 10000] [--queries 300]

Every message gets a unique key ``k-<i>``, the key ``order-<i // 10>`` and one of 1,000 tags.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from benchmarks.harness import Server
from benchmarks.report import RESULTS, write_summary
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2_grpc as api_grpc
from storage.model import AppendBatch, NewMessage, TopicType
from storage.query_contract import properties_with_keys
from storage.rocksdb import RocksDBStore

TOPIC = "query-bench"
QUEUES = 8
TAGS = 1000
BATCH = 2000
T0 = int(time.time() * 1000) - 3_600_000
"""Store times start an hour ago, well inside the server's retention."""


def message_id(i: int) -> str:
    return f"{uuid.UUID(int=i).hex.upper()}"


def new_message(i: int, body: bytes) -> NewMessage:
    wire = pb.Message(body=body)
    wire.topic.name = TOPIC
    sp = wire.system_properties
    sp.message_id = message_id(i)
    sp.tag = f"tag-{i % TAGS}"
    sp.keys.extend([f"k-{i}", f"order-{i // 10}"])
    sp.message_type = pb.MessageType.NORMAL
    sp.born_timestamp.FromMilliseconds(T0 + i)
    return NewMessage(sp.message_id, wire.SerializeToString(), tag=sp.tag,
                      properties=properties_with_keys({}, list(sp.keys)))


async def fill(data_dir: Path, count: int, progress: bool) -> float:
    """Store ``count`` messages, BATCH per append (whose messages share a store time); seconds taken."""
    store = RocksDBStore(str(data_dir))
    started = time.monotonic()
    try:
        await store.create_topic(TOPIC, TopicType.NORMAL, QUEUES, T0)
        body = bytes(256)
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            per_queue: dict[int, list[NewMessage]] = {}
            for i in range(done, done + size):
                per_queue.setdefault(i % QUEUES, []).append(new_message(i, body))
            await store.append([AppendBatch(TOPIC, q, ms) for q, ms in per_queue.items()], T0 + done, durable=False)
            done += size
            if progress and done % 200_000 < BATCH:
                rate = done / (time.monotonic() - started)
                print(f"\r  filled {done:,} of {count:,} ({rate:,.0f}/s)", end="", flush=True)
    finally:
        await store.close()
    if progress:
        print()
    return time.monotonic() - started


def timed(stub: Any, requests: list[api.QueryMessagesRequest], expect: Callable[[int], bool]) -> list[float]:
    """Milliseconds per call; every answer's size must satisfy ``expect``."""
    times = []
    for request in requests:
        began = time.perf_counter()
        answer = stub.QueryMessages(request, timeout=30)
        times.append((time.perf_counter() - began) * 1000)
        if not expect(len(answer.messages)):
            raise AssertionError(f"{request} answered {len(answer.messages)} messages")
    return times


def measure(address: str, count: int, queries: int, rng: random.Random) -> dict[str, list[float]]:
    def ts(ms: int) -> Any:
        from google.protobuf.timestamp_pb2 import Timestamp

        stamp = Timestamp()
        stamp.FromMilliseconds(ms)
        return stamp

    with grpc.insecure_channel(address) as channel:
        stub = api_grpc.MessagesStub(channel)  # type: ignore[no-untyped-call]
        picks = [rng.randrange(count) for _ in range(queries)]
        windows = [BATCH * rng.randrange(max(1, count // BATCH)) for _ in range(queries)]
        timed(stub, [api.QueryMessagesRequest(topic=TOPIC, message_id=message_id(i)) for i in picks[:20]],
              lambda n: n == 1)  # warm-up
        return {
            "id": timed(stub, [api.QueryMessagesRequest(topic=TOPIC, message_id=message_id(i)) for i in picks],
                        lambda n: n == 1),
            "key (10)": timed(stub, [api.QueryMessagesRequest(topic=TOPIC, key=f"order-{i // 10}") for i in picks],
                              lambda n: 1 <= n <= 10),
            "tag (64)": timed(stub, [api.QueryMessagesRequest(topic=TOPIC, tag=f"tag-{i % TAGS}") for i in picks],
                              lambda n: n == min(64, count // TAGS)),
            # one append's messages share a store time: a 1 ms window holds BATCH of them
            "time window (100)": timed(stub, [api.QueryMessagesRequest(
                topic=TOPIC, limit=100, store_time=api.StoreTimeRange(since=ts(T0 + w), until=ts(T0 + w + 1)))
                for w in windows], lambda n: n == 100),
            "latest 1,024": timed(stub, [api.QueryMessagesRequest(topic=TOPIC, store_time=api.StoreTimeRange())
                                         for _ in range(max(10, queries // 10))], lambda n: n == min(1024, count)),
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    results: dict[int, dict[str, list[float]]] = {}
    fills: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="rmqproxy-query-", dir=args.workdir) as tmp:
        for count in (args.small, args.messages):
            data = Path(tmp) / f"data-{count}"
            print(f"filling {count:,} messages into {data}")
            fills[count] = await fill(data, count, progress=True)
            server = Server(data, ("--flush", "async")).start()
            try:
                results[count] = measure(server.address, count, args.queries, rng)
            finally:
                server.stop()
    kinds = list(results[args.small])
    lines = [f"# Message query latency: {args.small:,} vs {args.messages:,} stored messages", "",
             f"One topic, {QUEUES} queues, RocksDB; calls of rmqproxy.admin.v1.Messages over gRPC on loopback, one "
             f"at a time, {args.queries} per kind (latest: {max(10, args.queries // 10)}). Milliseconds.", "",
             f"| query | p50 {args.small:,} | p99 {args.small:,} | p50 {args.messages:,} | p99 {args.messages:,} "
             "| p99 ratio |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    document: dict[str, Any] = {"small": args.small, "large": args.messages, "fill_seconds": fills, "kinds": {}}
    for kind in kinds:
        small, large = results[args.small][kind], results[args.messages][kind]
        row = [percentile(small, 0.5), percentile(small, 0.99), percentile(large, 0.5), percentile(large, 0.99)]
        document["kinds"][kind] = {"small_ms": small, "large_ms": large, "p50_p99": row,
                                   "mean_large": statistics.mean(large)}
        lines.append(f"| {kind} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.1f} | {row[3]:.1f} | {row[3] / row[1]:.2f} |")
    lines += ["", f"Filling took {fills[args.messages]:.0f} s for {args.messages:,} messages (direct store appends)."]
    write_summary(Path(args.out), args.name, document, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workdir", default=None, help="where the data directories go (default: the temp dir)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default="query")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
