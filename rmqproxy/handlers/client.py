"""Telemetry (the settings handshake), Heartbeat and NotifyClientTermination."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from rmqproxy import handles
from rmqproxy.broker.broker import Broker
from rmqproxy.broker.clients import ClientSession
from rmqproxy.broker.questions import STACK, Answer
from rmqproxy.clock import Clock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.convert import half_message, stored_message
from rmqproxy.errors import ProtocolError, to_status
from rmqproxy.filters import compile_filter, describe_filter
from rmqproxy.handlers.resources import group_named
from rmqproxy.handlers.settings import CONSUMER_TYPES, check_client_properties, client_language, server_settings
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.validate import enum_name
from storage.model import GroupConfig, HalfMessage

log = logging.getLogger(__name__)
_END = object()
_CLIENT_TYPES = frozenset(pb.ClientType.values())
OK = pb.Status(code=pb.Code.OK, message="OK")


class ClientHandler:
    def __init__(self, broker: Broker, config: ServerConfig, clock: Clock) -> None:
        self._broker = broker
        self._config = config
        self._clock = clock
        broker.on_group_update(self._push_settings)
        broker.on_transaction_check(self._ask_producer)
        broker.questions.on_question(self._write_question)
        broker.notify_unsubscribe = self._notify_unsubscribe

    def _ask_producer(self, session: ClientSession, half: HalfMessage) -> None:
        """Ask a producer to resolve a half message: RecoverOrphanedTransactionCommand on one of its
        Telemetry streams; it answers with EndTransaction (source SOURCE_SERVER_CHECK)."""
        topic = self._broker.find_topic(half.topic)
        if topic is None or not session.streams:
            return
        command = rpc.RecoverOrphanedTransactionCommand(
            message=half_message(half), transaction_id=handles.encode_transaction(topic.topic_id, half.transaction_id))
        session.streams[0].put_nowait(rpc.TelemetryCommand(recover_orphaned_transaction_command=command))

    def _notify_unsubscribe(self, client_id: str, group: str, parent: str, lite: str) -> None:
        """The server dropped one of the client's lite subscriptions (its lite topic is gone):
        NotifyUnsubscribeLiteCommand on its Telemetry streams here."""
        session = self._broker.clients.get(client_id)
        if session is None:
            return
        notice = rpc.NotifyUnsubscribeLiteCommand(lite_topic=lite)
        command = rpc.TelemetryCommand(notify_unsubscribe_lite_command=notice)
        for outbox in session.streams:
            outbox.put_nowait(command)

    def _write_question(self, session: ClientSession, kind: str, nonce: str, payload: Any) -> None:
        """A question for the client (rmqproxy/broker/questions.py), on one of its streams."""
        if kind == STACK:
            command = rpc.TelemetryCommand(
                print_thread_stack_trace_command=rpc.PrintThreadStackTraceCommand(nonce=nonce))
        else:
            command = rpc.TelemetryCommand(
                verify_message_command=rpc.VerifyMessageCommand(nonce=nonce, message=stored_message(payload)))
        session.streams[0].put_nowait(command)

    def _answer(self, settings: pb.Settings, language: int) -> pb.Settings:
        group = self._broker.find_group(settings.subscription.group.name)
        if settings.client_type not in CONSUMER_TYPES or group is None:
            group = GroupConfig("", 0, 0, max_retries=self._config.max_retries)
        return server_settings(settings, language=language, config=self._config, consumer_policy=group.retry_policy,
                               max_attempts=group.max_attempts, fifo=group.fifo)

    def _push_settings(self, group: GroupConfig) -> None:
        """A group's settings changed: send its connected consumers their new settings now,
        rather than at their next sync (every 5 minutes); the clients apply them on receipt."""
        streams = 0
        for session in self._broker.clients.consumers(group.name):
            if session.settings is None:
                continue
            settings, language = session.settings
            answer = self._answer(settings, language)
            for outbox in session.streams:
                outbox.put_nowait(rpc.TelemetryCommand(status=OK, settings=answer))
                streams += 1
        if streams:
            log.info("group %s changed; new settings sent on %d Telemetry stream(s)", group.name, streams)

    def ask_to_reconnect(self) -> int:
        """Tell every client with a Telemetry stream open here to reconnect
        (ReconnectEndpointsCommand: the server is draining); how many streams were told."""
        command = rpc.TelemetryCommand(
            reconnect_endpoints_command=rpc.ReconnectEndpointsCommand(nonce=uuid.uuid4().hex))
        told = 0
        for session in self._broker.clients.local():
            for outbox in session.streams:
                outbox.put_nowait(command)
                told += 1
        return told

    async def telemetry(self, requests: AsyncIterator[rpc.TelemetryCommand], ctx: RequestContext,
                        check_settings: Callable[[pb.Settings], None] | None = None,
                        ) -> AsyncIterator[rpc.TelemetryCommand]:
        """Answer each Settings the client writes; pass on commands the server has for it.
        ``check_settings`` (the call pipeline's authorization) may refuse a Settings: the refusal is
        answered like any refused Settings.

        The stream stays open for the client's lifetime; when it closes and it was the client's
        last one, the client is gone and the broker releases what it held."""
        clients = self._broker.clients
        outbox = clients.open_stream(ctx.client_id, self._clock.now_ms())
        reader = asyncio.create_task(self._read(requests, ctx, outbox, check_settings))
        try:
            while True:
                item = await outbox.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            reader.cancel()
            if clients.close_stream(ctx.client_id, outbox):
                # Detached: this generator may be closing because its call was cancelled.
                self._broker.spawn(self._broker.client_gone(ctx.client_id))

    async def _read(self, requests: AsyncIterator[rpc.TelemetryCommand], ctx: RequestContext,
                    outbox: asyncio.Queue[Any], check_settings: Callable[[pb.Settings], None] | None) -> None:
        try:
            async for command in requests:
                if command.HasField("settings"):
                    try:
                        if check_settings is not None:
                            check_settings(command.settings)
                        answer = await self.on_settings(command.settings, ctx)
                    except Exception as exc:
                        # Refused settings are answered with a status and no settings, and the stream
                        # stays open: that is how a client learns its startup failed (the Node client
                        # rejects startup() with the code). Ending the stream instead makes clients
                        # reconnect and resend the same settings every second, forever. The Go client
                        # is the exception: it ignores a command without settings and its Start()
                        # waits for settings until its stream fails, so for it the stream ends with
                        # the error (INVALID_ARGUMENT, "<CODE>: <message>"), as the reference proxy
                        # does for every client.
                        if client_language(command.settings, ctx.language) == pb.Language.GOLANG:
                            raise
                        code, message = to_status(exc)
                        outbox.put_nowait(rpc.TelemetryCommand(status=pb.Status(code=code, message=message)))
                        continue
                    outbox.put_nowait(rpc.TelemetryCommand(status=OK, settings=answer))
                elif command.HasField("thread_stack_trace"):
                    trace = command.thread_stack_trace
                    self._broker.questions.answered(trace.nonce, Answer(
                        command.status.code, command.status.message, trace.thread_stack_trace))
                elif command.HasField("verify_message_result"):
                    self._broker.questions.answered(command.verify_message_result.nonce, Answer(
                        command.status.code, command.status.message))
                elif command.HasField("verify_message_command"):
                    # The Node.js client answers a verification with the command itself (and
                    # NOT_IMPLEMENTED): its nonce still says which question it answers.
                    self._broker.questions.answered(command.verify_message_command.nonce, Answer(
                        command.status.code, command.status.message))
                # Anything else a client writes has no meaning from client to server: ignored.
            outbox.put_nowait(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            outbox.put_nowait(exc)

    async def on_settings(self, settings: pb.Settings, ctx: RequestContext) -> pb.Settings:
        client_type = settings.client_type
        if client_type == pb.ClientType.PRODUCER:
            group_name = None
        elif client_type in CONSUMER_TYPES:
            group_name = settings.subscription.group.name
            await group_named(self._broker, group_name)
        else:
            raise ProtocolError(pb.Code.UNRECOGNIZED_CLIENT_TYPE,
                                f"unsupported client type {enum_name(pb.ClientType, client_type)}")
        check_client_properties(settings.client_properties)
        language = client_language(settings, ctx.language)
        session = self._broker.clients.touch(ctx.client_id, self._clock.now_ms(), address=ctx.peer,
                                             version=settings.user_agent.version or ctx.client_version)
        session.client_type = enum_name(pb.ClientType, client_type)
        session.language = enum_name(pb.Language, language)  # informational: an unknown one is kept
        session.group = group_name
        session.properties = dict(settings.client_properties)
        session.topics = frozenset(t.name for t in settings.publishing.topics)
        for entry in settings.subscription.subscriptions:
            # An invalid expression ends the stream with ILLEGAL_FILTER_EXPRESSION, saying where.
            compile_filter(entry.expression.type, entry.expression.expression)
        session.subscriptions = {
            entry.topic.name: describe_filter(entry.expression.type, entry.expression.expression)
            for entry in settings.subscription.subscriptions
        }
        session.filters = {
            entry.topic.name: (entry.expression.type, entry.expression.expression)
            for entry in settings.subscription.subscriptions
        }
        session.settings = (settings, language)
        self._broker.clients.changed(session)  # other processes sharing the store learn of it
        if client_type == pb.ClientType.PRODUCER:
            self._broker.producers_online(session.topics)
        return self._answer(settings, language)

    async def heartbeat(self, request: rpc.HeartbeatRequest, ctx: RequestContext) -> rpc.HeartbeatResponse:
        now = self._clock.now_ms()
        if request.client_type not in _CLIENT_TYPES:
            raise ProtocolError(pb.Code.UNRECOGNIZED_CLIENT_TYPE, f"unknown client type {request.client_type}")
        known = self._broker.clients.get(ctx.client_id)
        if request.client_type == pb.ClientType.CLIENT_TYPE_UNSPECIFIED and (known is None or known.settings is None):
            raise ProtocolError(pb.Code.UNRECOGNIZED_CLIENT_TYPE,
                                "heartbeat from a client whose type is unknown: send settings first")
        if request.client_type in CONSUMER_TYPES and request.HasField("group"):
            await group_named(self._broker, request.group.name)
        session = self._broker.clients.touch(ctx.client_id, now, address=ctx.peer, language=ctx.language,
                                             version=ctx.client_version)
        session.last_heartbeat_ms = now
        if session.client_type == "UNSPECIFIED" and request.client_type:
            session.client_type = pb.ClientType.Name(request.client_type)
            session.group = request.group.name or None
        return rpc.HeartbeatResponse(status=OK)

    async def notify_client_termination(self, request: rpc.NotifyClientTerminationRequest,
                                        ctx: RequestContext) -> rpc.NotifyClientTerminationResponse:
        await self._broker.client_gone(ctx.client_id)
        return rpc.NotifyClientTerminationResponse(status=OK)
