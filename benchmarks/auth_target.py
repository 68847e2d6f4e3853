"""The ``rmqproxy-auth`` target: ``rmqproxy serve --auth`` with a Super user that prepares topics and
groups, and a Normal user the load signs as, whose ACL entries are prefix rules (so every call is
authenticated and then matched against the entries, as in a real deployment)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from benchmarks.harness import Server, aio_channel
from benchmarks.targets import Running
from rmqproxy.auth import signature
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2 as access
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2_grpc as access_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as admin
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as admin_grpc

ROOT = ("bench-root", "bench-root-secret")
LOAD = ("bench-load", "bench-load-secret")


def _signed(credentials: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    date_time = signature.format_date(int(time.time() * 1000))
    return (("x-mq-date-time", date_time), ("authorization", signature.authorization(*credentials, date_time)))


async def _setup(address: str, topics: Sequence[str], groups: Sequence[str], queues: int,
                 parallel: int = 64) -> None:
    async with aio_channel(address, None) as channel:
        users = access_grpc.AccessStub(channel)  # type: ignore[no-untyped-call]
        stub = admin_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
        try:
            await users.CreateUser(access.CreateUserRequest(name=LOAD[0], secret=LOAD[1]), metadata=_signed(ROOT),
                                   timeout=30)
            for resource, actions in (("Topic:*", ["Pub", "Sub"]), ("Group:*", ["Sub"])):
                await users.CreateAcl(access.AclRequest(entry=access.AclEntry(user=LOAD[0], resource=resource,
                                                                              actions=actions)),
                                      metadata=_signed(ROOT), timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        limit = asyncio.Semaphore(parallel)

        async def one(request: admin.CreateTopicRequest | admin.CreateGroupRequest) -> None:
            async with limit:
                try:
                    if isinstance(request, admin.CreateTopicRequest):
                        await stub.CreateTopic(request, metadata=_signed(ROOT), timeout=60)
                    else:
                        await stub.CreateGroup(request, metadata=_signed(ROOT), timeout=60)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # prepared before: fine
                        raise

        requests: list[admin.CreateTopicRequest | admin.CreateGroupRequest] = [
            admin.CreateTopicRequest(name=t, type=admin.NORMAL, queues=queues) for t in topics]
        requests += [admin.CreateGroupRequest(name=g) for g in groups]
        await asyncio.gather(*(one(r) for r in requests))


def auth_server(name: str, data: Path, args: Sequence[str]) -> Running:
    secret = data.parent / "root.secret"
    secret.write_text(ROOT[1])
    server = Server(data, ("--auth", "--init-user", ROOT[0], "--init-secret-file", str(secret), *args)).start()

    def prepare(topics: Sequence[str], groups: Sequence[str], queues: int) -> None:
        asyncio.run(_setup(server.address, topics, groups, queues))

    return Running(name, "rmqproxy", server.address, server.pid(), server.stop, prepare, None, LOAD)
