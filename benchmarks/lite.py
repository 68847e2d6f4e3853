"""What many lite topics (RocketMQ 5.5, RIP-83) under one parent cost the server, side by side with
the same number of messages sent to one normal topic.

    python -m benchmarks lite                          # 100,000 lite topics, one message each
    python -m benchmarks lite --lite-topics 20000 --hold 30 --store memory

Two servers, one after the other, each on loopback with its own data directory (``--flush async``:
the point is what is kept, not fsync): the first gets N messages on one normal topic, the second
one message on each of N lite topics of one lite parent (so each lite topic is made on first use).
For both it prints the resident memory (server and store process) before and after, the time the
sends took, and the CPU used while idle afterwards over ``--hold`` seconds, which by default spans
a retention pass (every 60 s: the one background job that visits every topic). The
difference between the two runs is what the lite topics themselves cost beyond their messages.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import Server, aio_channel, metadata
from benchmarks.report import write_summary
from benchmarks.targets import Sampler
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as admin
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as admin_grpc

MiB = 1024 * 1024
PARENT = "bench-lite"


def _message(topic: str, lite: str | None) -> pb.Message:
    message = pb.Message(body=b"x" * 64)
    message.topic.name = topic
    sp = message.system_properties
    sp.message_id = uuid.uuid4().hex.upper()
    sp.message_type = pb.MessageType.LITE if lite is not None else pb.MessageType.NORMAL
    if lite is not None:
        sp.lite_topic = lite
    return message


async def _fill(address: str, lite: bool, count: int, parallel: int) -> tuple[float, int]:
    """Send ``count`` messages (to as many lite topics, or to one normal topic); seconds taken and
    how many were refused."""
    async with aio_channel(address, None) as channel:
        topic_type = admin.LITE if lite else admin.NORMAL
        await admin_grpc.AdminStub(channel).CreateTopic(  # type: ignore[no-untyped-call]
            admin.CreateTopicRequest(name=PARENT, type=topic_type, queues=1), timeout=30)
        stub = rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]
        meta = metadata("bench-lite-producer")
        refused = 0
        next_index = 0

        async def sender() -> None:
            nonlocal next_index, refused
            while next_index < count:
                index = next_index
                next_index += 1
                request = rpc.SendMessageRequest(messages=[_message(PARENT, f"user-{index}" if lite else None)])
                answer = await stub.SendMessage(request, metadata=meta, timeout=60)
                refused += answer.status.code != pb.Code.OK

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(parallel)))
        return time.perf_counter() - began, refused


def _measure(store: str, lite: bool, count: int, hold: float, parallel: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-lite-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        server = Server(data, ("--flush", "async", "--store", store)).start()
        try:
            sampler = Sampler(server.pid()).start()
            time.sleep(2)
            before = sampler.usage(time.time() - 1, time.time()).peak_rss
            seconds, refused = asyncio.run(_fill(server.address, lite, count, parallel))
            time.sleep(2)
            began = time.time()
            time.sleep(hold)
            idle = sampler.usage(began, time.time())
            sampler.stop()
        finally:
            server.stop()
    return {"rss_before": before, "rss_after": idle.peak_rss, "fill_seconds": round(seconds, 1),
            "sends_per_second": round(count / seconds), "refused": refused,
            "idle_cpu_percent": round(idle.cpu_percent, 2)}


def lite_command(args: argparse.Namespace) -> int:
    count = args.lite_topics
    normal = _measure(args.store, False, count, args.hold, args.parallel)
    lite = _measure(args.store, True, count, args.hold, args.parallel)
    grown = {name: (run["rss_after"] - run["rss_before"]) for name, run in (("normal", normal), ("lite", lite))}
    per_lite = (grown["lite"] - grown["normal"]) / count
    lines = ["# Lite topics: what many of them cost", "",
             f"`python -m benchmarks lite --lite-topics {count} --hold {args.hold:g} --store {args.store}`: "
             f"{count:,} messages of 64 bytes, to one normal topic, "
             f"then (another server) one to each of {count:,} lite topics of one lite parent; server RSS (with its "
             f"store process) before and after, and CPU while idle for {args.hold:g} s afterwards (a retention "
             "pass included).", "",
             "| | sends/s | RSS before MiB | RSS after MiB | grew MiB | idle CPU % |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, run in (("one normal topic", normal), (f"{count:,} lite topics", lite)):
        lines.append(f"| {name} | {run['sends_per_second']:,} | {run['rss_before'] / MiB:.0f} | "
                     f"{run['rss_after'] / MiB:.0f} | {(run['rss_after'] - run['rss_before']) / MiB:.0f} | "
                     f"{run['idle_cpu_percent']:.2f} |")
    ratio = grown["lite"] / grown["normal"] if grown["normal"] > 0 else float("nan")
    lines += ["", f"Lite / normal memory growth: {ratio:.2f}; about {per_lite:,.0f} bytes of RSS per lite topic "
              f"beyond its message. Sends refused: {normal['refused']} / {lite['refused']}."]
    write_summary(args.out, args.name or time.strftime("lite-%Y%m%d-%H%M%S"),
                  {"kind": "lite", "lite_topics": count, "store": args.store, "normal": normal, "lite": lite,
                   "bytes_per_lite_topic": per_lite}, lines)
    return 1 if normal["refused"] or lite["refused"] else 0


def add_command(commands: Any, results: Path) -> None:
    lite = commands.add_parser("lite", help="memory and idle CPU of 100,000 lite topics under one parent",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lite.add_argument("--lite-topics", type=int, default=100_000, help="lite topics made (default 100000)")
    lite.add_argument("--hold", type=float, default=70, help="seconds of idle measured (default 70)")
    lite.add_argument("--store", default="rocksdb", help="the servers' --store (default rocksdb)")
    lite.add_argument("--parallel", type=int, default=64, help="sends in flight (default 64)")
    lite.add_argument("--out", type=Path, default=results)
    lite.add_argument("--name")
    lite.set_defaults(func=lite_command)
