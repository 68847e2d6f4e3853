"""The two servers the behaviour oracle compares, started alike: rmqproxy (``rmqproxy serve`` on its
embedded store) and Apache RocketMQ (benchmarks/rocketmq_peer.py), each with the same topics and
consumer groups created through its own admin path, and the same shortened transaction check timings.

A :class:`Peer` hides the difference in how topics and groups are made: rmqproxy's admin gRPC
service, or the broker's remoting requests mqadmin sends (benchmarks/rocketmq_admin.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration

from benchmarks.harness import Server
from benchmarks.rocketmq_peer import ApacheRocketMQ, version
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as admin
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as admin_grpc

TIMEOUT = 30

# Transaction checks, shortened the same way on both (defaults: first check after 6 s, again every
# 30 s, 15 checks): rmqproxy's serve options and the reference broker's broker.conf settings. The
# reference writes commit/rollback records in batches every transactionOpBatchInterval (3 s); that
# is kept at half the first check's delay, as by default (6 s), or a check would come before the
# producer's own commit or rollback is on record (seen: a rolled-back message committed by its checker).
CHECK_FIRST_S, CHECK_INTERVAL_S, CHECK_MAX = 2, 2, 3
RMQPROXY_ARGS = ("--flush", "async", "--transaction-check-first", f"{CHECK_FIRST_S}s",
                 "--transaction-check-interval", f"{CHECK_INTERVAL_S}s", "--transaction-max-checks", str(CHECK_MAX))
APACHE_BROKER = {"transactionTimeOut": str(CHECK_FIRST_S * 1000),
                 "transactionCheckInterval": str(CHECK_INTERVAL_S * 1000),
                 "transactionCheckMax": str(CHECK_MAX), "transactionOpBatchInterval": str(CHECK_FIRST_S * 500)}

KINDS = {"NORMAL": admin.NORMAL, "FIFO": admin.FIFO, "TRANSACTION": admin.TRANSACTION}


@dataclass
class Peer:
    """A started server: where clients reach it, how to make topics and groups, how to stop it."""

    label: str
    address: str
    topic: Callable[[str, str, int], None]
    """``topic(name, kind, queues)``, kind NORMAL, FIFO or TRANSACTION."""
    group: Callable[[str, bool, int, tuple[int, ...]], None]
    """``group(name, fifo, max_retries, retry_delays_ms)``; empty delays: the server's default policy."""
    settle: Callable[[], None]
    """Wait until what was just created is visible to clients (the reference's routes go through its
    name server)."""
    stop: Callable[[], None]


def rmqproxy(workdir: Path) -> Peer:
    data = workdir / "rmqproxy"
    data.mkdir(parents=True, exist_ok=True)
    server = Server(data, RMQPROXY_ARGS).start()
    channel = grpc.insecure_channel(server.address)
    stub = admin_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]

    def topic(name: str, kind: str, queues: int) -> None:
        stub.CreateTopic(admin.CreateTopicRequest(name=name, type=KINDS[kind], queues=queues), timeout=TIMEOUT)

    def group(name: str, fifo: bool, max_retries: int, delays_ms: tuple[int, ...]) -> None:
        settings = admin.GroupSettings(max_retries=max_retries, fifo=fifo)
        if delays_ms:
            settings.retry_policy.customized.delays.extend(
                Duration(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000) for ms in delays_ms)
        stub.CreateGroup(admin.CreateGroupRequest(name=name, from_beginning=True, settings=settings),
                         timeout=TIMEOUT)

    def stop() -> None:
        channel.close()
        server.stop()

    return Peer("rmqproxy", server.address, topic, group, lambda: None, stop)


def apache(workdir: Path) -> Peer:
    from benchmarks.rocketmq_admin import create_group, create_topic, wait_for_route

    server = ApacheRocketMQ(workdir / "rocketmq", broker_extra=APACHE_BROKER).start(timeout=300)

    def topic(name: str, kind: str, queues: int) -> None:
        create_topic(server.broker_address, name, queues, kind)
        wait_for_route(server.namesrv_address, name)

    def group(name: str, fifo: bool, max_retries: int, delays_ms: tuple[int, ...]) -> None:
        create_group(server.broker_address, name, fifo=fifo, retry_max_times=max_retries, retry_delays_ms=delays_ms)

    def settle() -> None:
        time.sleep(0.5)  # margin for the proxy, which reads routes from the name server (waited for above)

    return Peer(f"Apache RocketMQ {version()}", server.address, topic, group, settle, server.stop)


STARTERS: dict[str, Callable[[Path], Peer]] = {"rmqproxy": rmqproxy, "rocketmq": apache}
