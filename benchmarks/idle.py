"""Many idle long-polling consumers, each on its own connection if asked: what they cost the server,
and whether every one of them is served.

    python -m benchmarks idle                                   # 1,000 receives over 10 connections
    python -m benchmarks idle --consumers 5000 --channels 0     # 5,000 connections, all at once

Starts rmqproxy (RocksDB, --flush sync) on loopback, measures its CPU and memory with nothing
connected, then opens the receives (long polls of 20 s on an empty topic, re-polled as each one
ends) all at once, as clients do when they reconnect after a restart, and measures again while they
wait. Then a new connection sends one message and the time until a waiting receive has it is
taken. Every receive must be answered (MESSAGE_NOT_FOUND when its poll ends): the command fails if
any call ended in an error. The connections the server holds are counted from its sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import psutil

from benchmarks.harness import Server, metadata
from benchmarks.report import write_summary
from benchmarks.scale import _message, _receive_and_ack, _receive_request
from benchmarks.targets import Sampler, rmqproxy_prepare
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

MiB = 1024 * 1024


def _stub(address: str) -> tuple[grpc.aio.Channel, rpc_grpc.MessagingServiceStub]:
    """A channel with a connection of its own (gRPC shares one between channels to the same address
    by default, which would make every "connection" here the same one)."""
    channel = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]


def server_connections(pid: int, port: int) -> int:
    """Established TCP connections from clients to the server's port."""
    try:
        top = psutil.Process(pid)
        processes = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0
    count = 0
    for process in processes:
        try:
            count += sum(1 for c in process.net_connections("tcp")
                         if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port)
        except psutil.Error:
            continue
    return count


async def _idle(server: Server, topic: str, group: str, consumers: int, channels: int, hold_s: float,
                sampler: Sampler) -> dict[str, Any]:
    address = server.address
    pairs = [_stub(address) for _ in range(channels or consumers)]
    request = _receive_request(topic, group, 1, 20)
    received: asyncio.Queue[float] = asyncio.Queue()
    stop = asyncio.Event()
    answered = 0
    errors: list[str] = []

    async def poller(i: int) -> None:
        nonlocal answered
        stub = pairs[i % len(pairs)][1]
        meta = metadata(f"idle-{i}")
        while not stop.is_set():
            try:
                got = await _receive_and_ack(stub, request, meta)
            except grpc.aio.AioRpcError as exc:
                if not stop.is_set():
                    errors.append(f"{exc.code().name}: {exc.details()}")
                    await asyncio.sleep(1)
                continue
            answered += 1
            if got:
                received.put_nowait(time.perf_counter())

    tasks = [asyncio.create_task(poller(i)) for i in range(consumers)]
    assert server.process is not None
    deadline = time.monotonic() + 60
    connected = 0
    while time.monotonic() < deadline:  # until every connection is up, and a little longer
        await asyncio.sleep(1)
        connected = server_connections(server.process.pid, server.port)
        if connected >= len(pairs):
            break
    await asyncio.sleep(3)
    began = time.time()
    await asyncio.sleep(hold_s)
    window = (began, time.time())
    connected = server_connections(server.process.pid, server.port)
    sender, stub = _stub(address)
    sent_at = time.perf_counter()
    await stub.SendMessage(rpc.SendMessageRequest(messages=[_message(topic, 256)]), metadata=metadata("idle-send"),
                           timeout=30)
    arrived = await asyncio.wait_for(received.get(), 30)
    await sender.close()
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel, _ in pairs:
        await channel.close()
    usage = sampler.usage(*window)
    return {"cpu_percent": round(usage.cpu_percent, 1), "peak_rss": usage.peak_rss,
            "wake_ms": round((arrived - sent_at) * 1000, 2), "connections": connected,
            "answered": answered, "errors": len(errors), "error_examples": sorted(set(errors))[:5]}


def idle_command(args: argparse.Namespace) -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # our side of the connections
    channels = args.channels or args.consumers
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as scratch:
        data = Path(scratch) / "data"
        data.mkdir()
        server = Server(data, ("--flush", "sync")).start()
        try:
            sampler = Sampler(server.pid()).start()
            topic, group = "bench-idle", "bench-idle-g"
            rmqproxy_prepare(server.address)([topic], [group], 8)
            time.sleep(2)
            began = time.time()
            time.sleep(args.hold)
            quiet = sampler.usage(began, time.time())
            busy = asyncio.run(_idle(server, topic, group, args.consumers, args.channels, args.hold, sampler))
            sampler.stop()
        finally:
            server.stop()
    per_consumer = (busy["peak_rss"] - quiet.peak_rss) / args.consumers
    lines = ["# Idle long-polling consumers", "",
             f"`python -m benchmarks idle --consumers {args.consumers} --channels {args.channels} "
             f"--hold {args.hold:g}`: "
             f"{args.consumers:,} receives long-polling (20 s) an empty topic over {channels:,} connections opened "
             f"at once, held {args.hold:g} s.", "",
             "| | server CPU % | server RSS MiB | connections held |", "| --- | ---: | ---: | ---: |",
             f"| no consumers | {quiet.cpu_percent:.1f} | {quiet.peak_rss / MiB:.0f} | 0 |",
             f"| {args.consumers:,} waiting | {busy['cpu_percent']:.1f} | {busy['peak_rss'] / MiB:.0f} | "
             f"{busy['connections']:,} |", "",
             f"About {per_consumer / 1024:.1f} KiB per waiting consumer. {busy['answered']:,} polls answered, "
             f"{busy['errors']} ended in an error{': ' + '; '.join(busy['error_examples']) if busy['errors'] else ''}. "
             f"One message sent on a new connection reached a waiting consumer {busy['wake_ms']} ms later."]
    write_summary(args.out, args.name or time.strftime("idle-%Y%m%d-%H%M%S"),
                  {"kind": "idle", "consumers": args.consumers, "channels": channels,
                   "quiet_cpu_percent": quiet.cpu_percent, "quiet_rss": quiet.peak_rss, **busy,
                   "bytes_per_consumer": per_consumer}, lines)
    return 1 if busy["errors"] or busy["connections"] < channels else 0


def add_command(commands: Any, results: Path) -> None:
    idle = commands.add_parser("idle", help="CPU and memory with many long-polling consumers and no messages",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    idle.add_argument("--consumers", type=int, default=1_000, help="waiting receives (default 1000)")
    idle.add_argument("--channels", type=int, default=10, help=(
        "connections they are spread over (default 10; 0: one connection per consumer)"))
    idle.add_argument("--hold", type=float, default=20, help="seconds measured (default 20)")
    idle.add_argument("--out", type=Path, default=results)
    idle.add_argument("--name")
    idle.set_defaults(func=idle_command)
