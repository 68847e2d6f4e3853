"""How cost grows with work: a deep backlog, many topics and groups (many idle long-pollers:
benchmarks/idle.py).

    python -m benchmarks backlog [--backlogs 1000000,10000000]
    python -m benchmarks breadth [--topics 10000 --queues 8 --groups 1000]

Each starts its own rmqproxy (RocksDB, --flush sync) on loopback, prints what it measured and
writes JSON and Markdown under benchmarks/results/.

* backlog: fills one topic (8 queues) with 1 KB messages up to each backlog size in turn and, at
  each, measures send latency (one message per RPC, 4 senders) and receive latency (receive 32 +
  ack, 4 receivers, reading from the head of the backlog), and the server's RSS. The targets:
  latency at the largest backlog within 1.5x of the smallest; RSS not growing with the backlog.
* breadth: measures QueryRoute and receive latency with a few topics, creates the topics and
  groups, measures again; memory per idle topic and group from the RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from benchmarks.drivers import Target, body
from benchmarks.harness import Server, csv_list, metadata
from benchmarks.load import fill
from benchmarks.report import percentile, write_summary
from benchmarks.targets import Sampler, rmqproxy_prepare
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

MiB = 1024 * 1024


def _channel(address: str) -> tuple[grpc.aio.Channel, rpc_grpc.MessagingServiceStub]:
    channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", -1)])
    return channel, rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]


def _message(topic: str, size: int) -> pb.Message:
    message = pb.Message(body=body(size))
    message.topic.name = topic
    message.system_properties.message_id = uuid.uuid4().hex.upper()
    message.system_properties.message_type = pb.MessageType.NORMAL
    return message


def _receive_request(topic: str, group: str, batch: int, poll_s: int) -> rpc.ReceiveMessageRequest:
    request = rpc.ReceiveMessageRequest(batch_size=batch, auto_renew=False)
    request.group.name = group
    request.message_queue.topic.name = topic
    request.message_queue.id = -1
    request.filter_expression.type = pb.FilterType.TAG
    request.filter_expression.expression = "*"
    request.invisible_duration.FromSeconds(60)
    request.long_polling_timeout.FromSeconds(poll_s)
    return request


async def _receive_and_ack(stub: rpc_grpc.MessagingServiceStub, request: rpc.ReceiveMessageRequest,
                           meta: Any) -> int:
    messages = [f.message async for f in stub.ReceiveMessage(request, metadata=meta, timeout=60)
                if f.WhichOneof("content") == "message"]
    if messages:
        ack = rpc.AckMessageRequest(entries=[rpc.AckMessageEntry(
            message_id=m.system_properties.message_id, receipt_handle=m.system_properties.receipt_handle)
            for m in messages])
        ack.group.CopyFrom(request.group)
        ack.topic.CopyFrom(request.message_queue.topic)
        await stub.AckMessage(ack, metadata=meta, timeout=30)
    return len(messages)


async def _timed(calls: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Run ``one(i)`` ``calls`` times, ``concurrency`` at a time; each call's latency in ms."""
    latencies: list[float] = []
    turn = iter(range(calls))

    async def worker() -> None:
        for i in turn:
            began = time.perf_counter()
            await one(i)
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(latencies)


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": round(percentile(ordered, 0.5), 2), "p99_ms": round(percentile(ordered, 0.99), 2),
            "max_ms": round(ordered[-1], 2), "samples": len(ordered)}


# --- backlog ---------------------------------------------------------------------------------

async def _backlog_probe(address: str, topic: str, group: str, size: int, calls: int) -> dict[str, Any]:
    channel, stub = _channel(address)
    meta = metadata("backlog-probe")
    async with channel:
        async def send(i: int) -> None:
            response = await stub.SendMessage(rpc.SendMessageRequest(messages=[_message(topic, size)]),
                                              metadata=meta, timeout=30)
            if response.status.code != pb.Code.OK:
                raise RuntimeError(response.status.message)

        request = _receive_request(topic, group, 32, 5)

        async def receive(i: int) -> None:
            if not await _receive_and_ack(stub, request, meta):
                raise RuntimeError("backlog ran dry")

        await _timed(40, 4, send)  # warm-up: connections, caches
        sends = await _timed(calls, 4, send)
        receives = await _timed(max(1, calls // 4), 4, receive)
    return {"send": _summary(sends), "receive": _summary(receives)}


def backlog_command(args: argparse.Namespace) -> int:
    sizes = sorted(args.backlogs)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        server = Server(data, ("--flush", "sync")).start()
        try:
            sampler = Sampler(server.pid()).start()
            topic, group = "bench-backlog", "bench-backlog-g"
            rmqproxy_prepare(server.address)([topic], [group], 8)
            target = Target("rmqproxy", server.address, (topic,), group, args.size)
            stored = 0
            for size in sizes:
                took = fill(target, size - stored, processes=args.processes, label=f"fill to {size:,}")
                print(f"backlog {size:,}: filled in {took:.0f} s ({(size - stored) / max(took, 1e-6):,.0f} msg/s)",
                      file=sys.stderr)
                stored = size
                time.sleep(2)  # let the flush after the fill settle before measuring
                probe = asyncio.run(_backlog_probe(server.address, topic, group, args.size, args.calls))
                rss = sampler.sample()[2]
                disk = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
                row = {"backlog": size, **probe, "rss_mib": round(rss / MiB, 1), "disk_mib": round(disk / MiB),
                       "fill_s": round(took, 1)}
                rows.append(row)
                print(f"backlog {size:,}: send p50 {probe['send']['p50_ms']} ms p99 {probe['send']['p99_ms']} ms; "
                      f"receive p50 {probe['receive']['p50_ms']} ms p99 {probe['receive']['p99_ms']} ms; "
                      f"RSS {row['rss_mib']} MiB; disk {row['disk_mib']} MiB", file=sys.stderr)
            sampler.stop()
        finally:
            server.stop()
    first, last = rows[0], rows[-1]
    ratios = {f"{kind}_{figure}": round(last[kind][figure] / max(first[kind][figure], 1e-6), 2)
              for kind in ("send", "receive") for figure in ("p50_ms", "p99_ms")}
    ratios["rss"] = round(last["rss_mib"] / first["rss_mib"], 2)
    lines = ["# Backlog", "",
             f"One topic, 8 queues, {args.size} B messages; latency of single sends (4 at a time) and of "
             "receive 32 + ack (4 at a time) from the head of the backlog.", "",
             "| backlog | send p50 ms | send p99 ms | receive p50 ms | receive p99 ms | server RSS MiB | disk MiB |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['backlog']:,} | {row['send']['p50_ms']} | {row['send']['p99_ms']} "
                     f"| {row['receive']['p50_ms']} | {row['receive']['p99_ms']} | {row['rss_mib']} "
                     f"| {row['disk_mib']:,} |")
    lines += ["", "Largest / smallest backlog: " + ", ".join(f"{k} {v}x" for k, v in ratios.items())
              + " (target: latency within 1.5x, RSS flat)."]
    write_summary(args.out, args.name or time.strftime("backlog-%Y%m%d-%H%M%S"),
           {"kind": "backlog", "size": args.size, "rows": rows, "ratios": ratios}, lines)
    return 0


# --- breadth ---------------------------------------------------------------------------------

async def _breadth_probe(address: str, topics: list[str], groups: list[str], calls: int,
                         seed: int) -> dict[str, Any]:
    """QueryRoute of random topics; send one message to a random topic and receive it with a
    random group (each group reads every topic)."""
    rng = random.Random(seed)
    channel, stub = _channel(address)
    meta = metadata("breadth-probe")
    async with channel:
        async def route(i: int) -> None:
            request = rpc.QueryRouteRequest()
            request.topic.name = rng.choice(topics)
            request.endpoints.scheme = pb.AddressScheme.IPv4
            request.endpoints.addresses.add(host="127.0.0.1", port=int(address.rsplit(":", 1)[1]))
            response = await stub.QueryRoute(request, metadata=meta, timeout=30)
            if response.status.code != pb.Code.OK:
                raise RuntimeError(response.status.message)

        routes = await _timed(calls, 4, route)
        # Receive latency: a message waiting in a random topic, received by a random group.
        # Distinct pairs: a group's one receive takes every message waiting in its topic, so a
        # repeated pair would find nothing the second time.
        wanted = min(calls // 4, len(topics) * len(groups))
        chosen: set[tuple[str, str]] = set()
        while len(chosen) < wanted:
            chosen.add((rng.choice(topics), rng.choice(groups)))
        picks = sorted(chosen)
        rng.shuffle(picks)
        for topic, _ in picks:
            await stub.SendMessage(rpc.SendMessageRequest(messages=[_message(topic, 256)]), metadata=meta,
                                   timeout=30)

        async def receive(i: int) -> None:
            topic, group = picks[i]
            if not await _receive_and_ack(stub, _receive_request(topic, group, 32, 5), meta):
                raise RuntimeError(f"nothing to receive on {topic} for {group}")

        receives = await _timed(len(picks), 1, receive)
    return {"query_route": _summary(routes), "receive": _summary(receives)}


def breadth_command(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        server = Server(data, ("--flush", "sync")).start()
        try:
            sampler = Sampler(server.pid())
            prepare = rmqproxy_prepare(server.address)
            few_topics = [f"bench-few-{i}" for i in range(10)]
            few_groups = [f"bench-few-g{i}" for i in range(10)]
            prepare(few_topics, few_groups, args.queues)
            small = asyncio.run(_breadth_probe(server.address, few_topics, few_groups, args.calls, 1))
            time.sleep(1)
            rss_before = sampler.sample()[2]
            topics = [f"bench-topic-{i:05d}" for i in range(args.topics)]
            groups = [f"bench-group-{i:04d}" for i in range(args.groups)]
            began = time.time()
            prepare(topics, [], args.queues)
            topics_s = time.time() - began
            time.sleep(1)
            rss_topics = sampler.sample()[2]
            began = time.time()
            prepare([], groups, args.queues)
            groups_s = time.time() - began
            time.sleep(1)
            rss_groups = sampler.sample()[2]
            large = asyncio.run(_breadth_probe(server.address, topics, groups, args.calls, 2))
        finally:
            server.stop()
    per_topic = (rss_topics - rss_before) / args.topics
    per_group = (rss_groups - rss_topics) / max(1, args.groups)
    ratios = {f"{kind}_{figure}": round(large[kind][figure] / max(small[kind][figure], 1e-6), 2)
              for kind in ("query_route", "receive") for figure in ("p50_ms", "p99_ms")}
    lines = ["# Breadth", "",
             f"{args.topics:,} topics x {args.queues} queues and {args.groups:,} groups, created in "
             f"{topics_s:.0f} s and {groups_s:.0f} s; latency against 10 topics and 10 groups first.", "",
             "| | QueryRoute p50 ms | QueryRoute p99 ms | receive p50 ms | receive p99 ms |",
             "| --- | ---: | ---: | ---: | ---: |",
             f"| 10 topics, 10 groups | {small['query_route']['p50_ms']} | {small['query_route']['p99_ms']} "
             f"| {small['receive']['p50_ms']} | {small['receive']['p99_ms']} |",
             f"| {args.topics:,} topics, {args.groups:,} groups | {large['query_route']['p50_ms']} "
             f"| {large['query_route']['p99_ms']} | {large['receive']['p50_ms']} | {large['receive']['p99_ms']} |",
             "", "Large / small: " + ", ".join(f"{k} {v}x" for k, v in ratios.items()) + ".",
             f"Server RSS {rss_before / MiB:.0f} MiB before, {rss_topics / MiB:.0f} MiB with the topics, "
             f"{rss_groups / MiB:.0f} MiB with the groups: about {per_topic / 1024:.1f} KiB per idle topic "
             f"({args.queues} queues) and {per_group / 1024:.1f} KiB per idle group."]
    write_summary(args.out, args.name or time.strftime("breadth-%Y%m%d-%H%M%S"),
           {"kind": "breadth", "topics": args.topics, "queues": args.queues, "groups": args.groups,
            "small": small, "large": large, "ratios": ratios, "rss_before": rss_before,
            "rss_topics": rss_topics, "rss_groups": rss_groups, "bytes_per_topic": per_topic,
            "bytes_per_group": per_group}, lines)
    return 0


def add_commands(commands: Any, results: Path) -> None:
    backlog = commands.add_parser("backlog", help="latency and memory as one topic's backlog grows",
                                  description=__doc__.split("\n\n")[2] if __doc__ else None)
    backlog.add_argument("--backlogs", type=csv_list(int), default=[1_000_000, 10_000_000],
                         help="backlog sizes to measure at, ascending (default 1000000,10000000)")
    backlog.add_argument("--size", type=int, default=1024, help="message body bytes (default 1024)")
    backlog.add_argument("--calls", type=int, default=2000, help="sends measured at each size (default 2000)")
    backlog.add_argument("--processes", type=int, default=2, help="load processes filling (default 2)")
    backlog.add_argument("--out", type=Path, default=results)
    backlog.add_argument("--name")
    backlog.set_defaults(func=backlog_command)

    breadth = commands.add_parser("breadth", help="route and receive latency with many topics and groups")
    breadth.add_argument("--topics", type=int, default=10_000, help="topics to create (default 10000)")
    breadth.add_argument("--queues", type=int, default=8, help="queues per topic (default 8)")
    breadth.add_argument("--groups", type=int, default=1_000, help="groups to create (default 1000)")
    breadth.add_argument("--calls", type=int, default=2000, help="QueryRoute calls measured (default 2000)")
    breadth.add_argument("--out", type=Path, default=results)
    breadth.add_argument("--name")
    breadth.set_defaults(func=breadth_command)
