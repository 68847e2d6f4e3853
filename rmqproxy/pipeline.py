"""The one call pipeline every RPC goes through.

Every call, whatever its shape (a unary MessagingService RPC, the ReceiveMessage server stream, the
Telemetry bidi stream, the admin API, the client-metrics receiver), takes the same steps, here and
nowhere else::

    build the RequestContext (rmqproxy/context.py)
      -> authenticate     (Access.authenticate: who signed the call; skipped when auth is off)
      -> authorize        (Access.authorize: the rights the RPC needs, computed only when auth is on)
      -> observer.start
      -> the handler
      -> the exception, if any, becomes a protocol status (rmqproxy/errors.py), delivered the way the
         RPC's shape wants: the response's ``status`` (unary), one status frame (ReceiveMessage), a
         gRPC status ending the call (Telemetry, admin API, client metrics)
      -> observer.finish(rpc, code, seconds)

Adding a cross-cutting concern is a change in this module. The observer is called twice per RPC
with nothing but plain values, so a metrics implementation can stay allocation-free.

A client must keep reading the streams it opened: a write it does not take within the stream write
timeout ends the stream with DEADLINE_EXCEEDED (:class:`StreamStalled`), and ReceiveMessage gives the
messages it was writing back to the queue at once rather than leaving them invisible for nothing.

Streams are watched while open: when the caller's user is disabled or deleted, or an ACL change
takes a right the stream needs away, :class:`Access` ends it at once (see :class:`StreamWatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

import grpc

from rmqproxy.context import RequestContext, ServicerContext, request_context
from rmqproxy.errors import AccessDenied, ProtocolError, StreamStalled, to_grpc_status, to_status
from rmqproxy.listen.peers import PeerTable
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc

log = logging.getLogger(__name__)
R = TypeVar("R")
_OK = int(pb.Code.OK)


def _receive_status(status: pb.Status) -> rpc.ReceiveMessageResponse:
    return rpc.ReceiveMessageResponse(status=status)


class CallObserver(Protocol):
    """Told about every RPC; metrics implement it. Both calls run on the event loop inside the
    call: they must be cheap and must not raise."""

    def start(self, rpc: str) -> None: ...

    def finish(self, rpc: str, code: int, duration_s: float) -> None:
        """``code`` is the protocol code (apache.rocketmq.v2.Code) the call ended with: the
        response's status, ReceiveMessage's status frame, or the code the error that ended a
        stream or an admin call maps to (OK = 20000)."""


class NoObserver:
    def start(self, rpc: str) -> None:
        return None

    def finish(self, rpc: str, code: int, duration_s: float) -> None:
        return None


Needs = Callable[[], Sequence[Any]]
"""What a call needs, computed only when authorization is on (rmqproxy/auth/rights.py)."""


class StreamWatch:
    """An open stream of an authenticated user: :class:`Access` re-checks it after every change of
    users or ACLs and calls :meth:`revoke` when it may no longer run."""

    __slots__ = ("_task", "ctx", "needs", "reason", "user")

    def __init__(self, user: str, ctx: RequestContext, needs: Sequence[Any]) -> None:
        self.user = user
        self.ctx = ctx
        self.needs = needs
        self.reason: AccessDenied | None = None
        self._task = asyncio.current_task()

    def revoke(self, reason: AccessDenied) -> None:
        if self.reason is None and self._task is not None:
            self.reason = reason
            self._task.cancel()


class Access(Protocol):
    """Authentication and authorization (rmqproxy/auth/access.py); None in the pipeline when off."""

    def authenticate(self, ctx: RequestContext, *, required: bool) -> str | None:
        """The user who signed the call (None: anonymous, allowed only when not ``required``);
        AccessDenied if the signature is wrong or the user unknown or disabled."""

    def authorize(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> None:
        """AccessDenied unless ``user`` holds every one of ``needs``."""

    def watch(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> StreamWatch | None: ...

    def unwatch(self, watch: StreamWatch | None) -> None: ...


class Pipeline:
    def __init__(self, peers: PeerTable | None = None, *, observer: CallObserver | None = None,
                 access: Access | None = None, stream_write_timeout_s: float | None = None) -> None:
        self._peers = peers if peers is not None else PeerTable()
        self.observer: CallObserver = observer if observer is not None else NoObserver()
        self.access = access
        self._stall_s = stream_write_timeout_s or None

    async def _write(self, context: ServicerContext, message: Any) -> None:
        """One stream write, bounded by the stream write timeout (one timer, no extra task)."""
        stall = self._stall_s
        if stall is None:
            await context.write(message)
            return
        try:
            async with asyncio.timeout(stall):
                await context.write(message)
        except TimeoutError:
            raise StreamStalled(stall) from None

    def _enter(self, context: ServicerContext, needs: Needs | None, *, client_id_required: bool = True,
               signature_required: bool = True) -> tuple[RequestContext, str | None]:
        ctx = request_context(context, self._peers, client_id_required=client_id_required)
        access = self.access
        if access is None:
            return ctx, None
        user = access.authenticate(ctx, required=signature_required)
        if needs is not None:
            access.authorize(user, ctx, needs())
        return ctx, user

    # -- MessagingService --------------------------------------------------------------------

    async def unary(self, name: str, context: ServicerContext, response_type: Callable[[], R],
                    call: Callable[[RequestContext], Awaitable[R]], needs: Needs | None = None) -> R:
        """A unary MessagingService RPC: errors travel in the response's status (gRPC OK)."""
        observer = self.observer
        observer.start(name)
        began = time.perf_counter()
        try:
            ctx, _ = self._enter(context, needs)
            response = await call(ctx)
        except asyncio.CancelledError:
            observer.finish(name, int(pb.Code.INTERNAL_SERVER_ERROR), time.perf_counter() - began)
            raise
        except Exception as exc:
            code, message = to_status(exc)
            response = response_type()
            status = response.status  # type: ignore[attr-defined]
            status.code = code
            status.message = message
            observer.finish(name, code, time.perf_counter() - began)
            return response
        observer.finish(name, response.status.code, time.perf_counter() - began)  # type: ignore[attr-defined]
        return response

    async def receive(self, name: str, context: ServicerContext, needs: Needs | None,
                      call: Callable[[RequestContext, Callable[[Any], Awaitable[None]]], Awaitable[None]],
                      status_frame: Callable[[pb.Status], Any] = _receive_status) -> None:
        """ReceiveMessage (and PullMessage, with its own ``status_frame``): an error becomes the
        stream's one status frame."""
        observer = self.observer
        observer.start(name)
        began = time.perf_counter()
        code = _OK
        watch: StreamWatch | None = None

        async def write(response: Any) -> None:
            nonlocal code
            if response.HasField("status"):
                code = response.status.code
            await self._write(context, response)

        try:
            try:
                ctx, user = self._enter(context, needs)
                if self.access is not None and user is not None:
                    watch = self.access.watch(user, ctx, needs() if needs is not None else ())
                await call(ctx, write)
            except asyncio.CancelledError:
                if watch is None or watch.reason is None:
                    raise
                _uncancel()
                raise watch.reason from None
        except asyncio.CancelledError:
            code = int(pb.Code.INTERNAL_SERVER_ERROR)
            raise
        except StreamStalled as exc:
            code = int(pb.Code.REQUEST_TIMEOUT)  # a status frame would stall too: end the call instead
            _log_stall(name, context, exc)
            await _abort(context, exc)
        except Exception as exc:
            code, message = to_status(exc)
            with contextlib.suppress(Exception):  # if the client is gone, there is no one to tell
                await self._write(context, status_frame(pb.Status(code=code, message=message)))
        finally:
            if watch is not None and self.access is not None:
                self.access.unwatch(watch)
            observer.finish(name, code, time.perf_counter() - began)

    async def telemetry(self, name: str, context: ServicerContext, requests: AsyncIterator[rpc.TelemetryCommand],
                        call: Callable[[AsyncIterator[rpc.TelemetryCommand], RequestContext,
                                        Callable[[pb.Settings], None] | None], AsyncIterator[rpc.TelemetryCommand]],
                        settings_needs: Callable[[pb.Settings], Sequence[Any]]) -> None:
        """Telemetry: every Settings the client writes is authorized (the handler answers a refused
        one as it answers any refused Settings, see rmqproxy/handlers/client.py); a failed
        authentication, a revocation or another error ends the stream with a gRPC status (the
        protocol's one exception)."""
        observer = self.observer
        observer.start(name)
        began = time.perf_counter()
        code = _OK
        stream: AsyncIterator[rpc.TelemetryCommand] | None = None
        watch: StreamWatch | None = None
        try:
            try:
                ctx, user = self._enter(context, None)
                access = self.access
                check: Callable[[pb.Settings], None] | None = None
                if access is not None:
                    watch = access.watch(user, ctx, ())
                    check = _settings_check(access, user, ctx, settings_needs, watch)
                stream = call(requests, ctx, check)
                async for command in stream:
                    await self._write(context, command)
            except asyncio.CancelledError:
                if watch is None or watch.reason is None:
                    raise
                _uncancel()
                raise watch.reason from None
        except asyncio.CancelledError:
            code = int(pb.Code.INTERNAL_SERVER_ERROR)
            raise
        except Exception as exc:
            code = int(to_status(exc)[0]) if not isinstance(exc, ProtocolError) else int(exc.code)
            if isinstance(exc, StreamStalled):
                _log_stall(name, context, exc)
            await _abort(context, exc)
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            if watch is not None and self.access is not None:
                self.access.unwatch(watch)
            observer.finish(name, code, time.perf_counter() - began)

    # -- our own APIs: the admin API, the client-metrics receiver -----------------------------

    async def grpc_unary(self, name: str, context: ServicerContext, call: Callable[[RequestContext], Awaitable[R]],
                         needs: Needs | None = None, *, signature_required: bool = True) -> R:
        """An RPC of our own API: errors end the call with a gRPC status. No x-mq-client-id needed."""
        observer = self.observer
        observer.start(name)
        began = time.perf_counter()
        code = _OK
        try:
            ctx, _ = self._enter(context, needs, client_id_required=False, signature_required=signature_required)
            return await call(ctx)
        except grpc.aio.AbortError:
            code = int(pb.Code.BAD_REQUEST)
            raise
        except asyncio.CancelledError:
            code = int(pb.Code.INTERNAL_SERVER_ERROR)
            raise
        except Exception as exc:
            code = int(to_status(exc)[0])
            await _abort(context, exc)
        finally:
            observer.finish(name, code, time.perf_counter() - began)

    async def grpc_stream(self, name: str, context: ServicerContext, call: Callable[[], AsyncIterator[R]], *,
                          signature_required: bool = False) -> AsyncIterator[R]:
        """A streaming RPC of our own API (the OpenCensus exporter's streams)."""
        observer = self.observer
        observer.start(name)
        began = time.perf_counter()
        code = _OK
        try:
            self._enter(context, None, client_id_required=False, signature_required=signature_required)
            async for item in call():
                yield item
        except asyncio.CancelledError:
            code = int(pb.Code.INTERNAL_SERVER_ERROR)
            raise
        except Exception as exc:
            code = int(to_status(exc)[0])
            await _abort(context, exc)
        finally:
            observer.finish(name, code, time.perf_counter() - began)


def _settings_check(access: Access, user: str | None, ctx: RequestContext,
                    needs: Callable[[pb.Settings], Sequence[Any]], watch: StreamWatch | None,
                    ) -> Callable[[pb.Settings], None]:
    def check(settings: pb.Settings) -> None:
        wanted = needs(settings)
        access.authorize(user, ctx, wanted)
        if watch is not None:
            watch.needs = wanted  # what a revocation re-checks from now on

    return check


def _uncancel() -> None:
    """A stream ended by revocation was cancelled by us, not by its caller: take the request back
    so the error can still be written."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _log_stall(rpc_name: str, context: ServicerContext, exc: StreamStalled) -> None:
    client = dict(context.invocation_metadata() or ()).get("x-mq-client-id", "?")
    log.warning("%s stream of client %s closed: %s", rpc_name, client, exc.message)


async def _abort(context: ServicerContext, exc: BaseException) -> NoReturn:
    status, message = to_grpc_status(exc)
    await context.abort(status, message)
    raise AssertionError("abort returned")  # pragma: no cover
