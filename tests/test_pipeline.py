"""The call pipeline (rmqproxy/pipeline.py): one place for context, authentication, authorization,
the observer and exception-to-status, for every shape of RPC. Driven with a minimal servicer
context; tests/test_e2e_auth.py drives the same pipeline through the real server and clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest

from rmqproxy.auth import rights
from rmqproxy.context import RequestContext
from rmqproxy.errors import AccessDenied, ProtocolError
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pipeline import Pipeline, StreamWatch
from storage.auth_model import Action
from storage.errors import TopicNotFound


class Context:
    """What the pipeline reads from and writes to a grpc.aio servicer context."""

    def __init__(self, metadata: Sequence[tuple[str, str]] = (("x-mq-client-id", "c1"),)) -> None:
        self.metadata = tuple(metadata)
        self.written: list[Any] = []
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> Any:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def time_remaining(self) -> float | None:
        return None

    async def write(self, message: Any) -> None:
        self.written.append(message)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...] | tuple[str, int]] = []

    def start(self, rpc: str) -> None:
        self.calls.append(("start", rpc))

    def finish(self, rpc: str, code: int, duration_s: float) -> None:
        assert duration_s >= 0
        self.calls.append((rpc, code))


class OnlyAlice:
    """An Access that knows one user, alice, with Pub on topic t."""

    def __init__(self) -> None:
        self.watches: list[StreamWatch] = []

    def authenticate(self, ctx: RequestContext, *, required: bool) -> str | None:
        if ctx.authorization == "alice":
            return "alice"
        if ctx.authorization or required:
            raise AccessDenied("unknown user")
        return None

    def authorize(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> None:
        for need in needs:
            if need != rights.topic("t", (Action.PUB,)):
                raise AccessDenied(f"user {user!r} has {need.describe()}", authenticated=True)

    def watch(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> StreamWatch | None:
        watch = StreamWatch(user or "", ctx, needs)
        self.watches.append(watch)
        return watch

    def unwatch(self, watch: StreamWatch | None) -> None:
        pass


ALICE = (("x-mq-client-id", "c1"), ("authorization", "alice"))


async def test_unary_ok_and_errors_become_the_response_status() -> None:
    observer = Recorder()
    pipeline = Pipeline(observer=observer)

    async def ok(ctx: RequestContext) -> rpc.SendMessageResponse:
        assert ctx.client_id == "c1" and ctx.peer == "127.0.0.1:5000"
        return rpc.SendMessageResponse(status=pb.Status(code=pb.Code.OK))

    async def missing(ctx: RequestContext) -> rpc.SendMessageResponse:
        raise TopicNotFound("t")

    async def broken(ctx: RequestContext) -> rpc.SendMessageResponse:
        raise RuntimeError("bug")

    assert (await pipeline.unary("SendMessage", Context(), rpc.SendMessageResponse, ok)).status.code == pb.Code.OK
    answer = await pipeline.unary("SendMessage", Context(), rpc.SendMessageResponse, missing)
    assert answer.status.code == pb.Code.TOPIC_NOT_FOUND and "'t'" in answer.status.message
    answer = await pipeline.unary("SendMessage", Context(), rpc.SendMessageResponse, broken)
    assert answer.status.code == pb.Code.INTERNAL_SERVER_ERROR and "bug" not in answer.status.message
    answer = await pipeline.unary("SendMessage", Context(()), rpc.SendMessageResponse, ok)
    assert answer.status.code == pb.Code.CLIENT_ID_REQUIRED
    assert observer.calls == [("start", "SendMessage"), ("SendMessage", pb.Code.OK),
                              ("start", "SendMessage"), ("SendMessage", pb.Code.TOPIC_NOT_FOUND),
                              ("start", "SendMessage"), ("SendMessage", pb.Code.INTERNAL_SERVER_ERROR),
                              ("start", "SendMessage"), ("SendMessage", pb.Code.CLIENT_ID_REQUIRED)]


async def test_needs_are_computed_only_with_access() -> None:
    async def ok(ctx: RequestContext) -> rpc.SendMessageResponse:
        return rpc.SendMessageResponse(status=pb.Status(code=pb.Code.OK))

    def needs() -> Sequence[Any]:
        raise AssertionError("computed without authorization")

    answer = await Pipeline().unary("SendMessage", Context(), rpc.SendMessageResponse, ok, needs)
    assert answer.status.code == pb.Code.OK
    guarded = Pipeline(access=OnlyAlice())
    answer = await guarded.unary("SendMessage", Context(), rpc.SendMessageResponse, ok,
                                 lambda: [rights.topic("t", (Action.PUB,))])
    assert answer.status.code == pb.Code.UNAUTHORIZED and answer.status.message == "unknown user"
    answer = await guarded.unary("SendMessage", Context(ALICE), rpc.SendMessageResponse, ok,
                                 lambda: [rights.topic("t", (Action.PUB,))])
    assert answer.status.code == pb.Code.OK
    answer = await guarded.unary("SendMessage", Context(ALICE), rpc.SendMessageResponse, ok,
                                 lambda: [rights.topic("u", (Action.PUB,))])
    assert (answer.status.code, answer.status.message) == (pb.Code.UNAUTHORIZED,
                                                           "user 'alice' has no Pub right on Topic u")


async def test_receive_error_is_one_status_frame_and_revocation_ends_it() -> None:
    observer = Recorder()
    access = OnlyAlice()
    pipeline = Pipeline(observer=observer, access=access)
    context = Context(ALICE)

    async def refused(ctx: RequestContext, write: Any) -> None:
        raise ProtocolError(pb.Code.ILLEGAL_INVISIBLE_TIME, "too short")

    await pipeline.receive("ReceiveMessage", context, None, refused)
    assert [f.status.code for f in context.written] == [pb.Code.ILLEGAL_INVISIBLE_TIME]

    polling = asyncio.Event()

    async def long_poll(ctx: RequestContext, write: Any) -> None:
        polling.set()
        await asyncio.sleep(60)

    context = Context(ALICE)
    task = asyncio.create_task(pipeline.receive("ReceiveMessage", context, None, long_poll))
    await polling.wait()
    access.watches[-1].revoke(AccessDenied("user 'alice' is disabled"))
    await asyncio.wait_for(task, 5)
    assert [(f.status.code, f.status.message) for f in context.written] == [
        (pb.Code.UNAUTHORIZED, "user 'alice' is disabled")]
    assert observer.calls[-1] == ("ReceiveMessage", pb.Code.UNAUTHORIZED)


async def test_telemetry_and_admin_end_with_grpc_status() -> None:
    observer = Recorder()
    pipeline = Pipeline(observer=observer, access=OnlyAlice())

    async def requests() -> AsyncIterator[rpc.TelemetryCommand]:
        yield rpc.TelemetryCommand()

    async def serve(commands: AsyncIterator[rpc.TelemetryCommand], ctx: RequestContext,
                    check: Any) -> AsyncIterator[rpc.TelemetryCommand]:
        async for _ in commands:
            yield rpc.TelemetryCommand(status=pb.Status(code=pb.Code.OK))

    context = Context((("x-mq-client-id", "c1"), ("authorization", "mallory")))
    with pytest.raises(grpc.aio.AbortError):
        await pipeline.telemetry("Telemetry", context, requests(), serve, rights.settings)
    assert context.aborted == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHORIZED: unknown user")
    context = Context(ALICE)
    await pipeline.telemetry("Telemetry", context, requests(), serve, rights.settings)
    assert [c.status.code for c in context.written] == [pb.Code.OK]

    async def create(ctx: RequestContext) -> str:
        return "created"

    context = Context(ALICE)
    with pytest.raises(grpc.aio.AbortError):
        await pipeline.grpc_unary("CreateTopic", context, create, lambda: [rights.topic("x", (Action.CREATE,))])
    assert context.aborted == (grpc.StatusCode.PERMISSION_DENIED,
                               "UNAUTHORIZED: user 'alice' has no Create right on Topic x")
    assert await pipeline.grpc_unary("CreateTopic", Context(ALICE), create, lambda: []) == "created"
    assert ("Telemetry", pb.Code.UNAUTHORIZED) in observer.calls and ("Telemetry", pb.Code.OK) in observer.calls
    assert observer.calls[-1] == ("CreateTopic", pb.Code.OK)
