"""What the load generator drives: one small interface, one implementation per kind of server.

A driver is created inside a worker process, connects to one running server and does one RPC's
worth of work per call, so the same load generator measures rmqproxy, the bare gRPC echo server
and the peers (NATS JetStream, RabbitMQ) alike:

* ``produce(batch)`` sends ``batch`` messages of the configured size and returns once the server
  acknowledged them (durably, as far as that server's acknowledgement goes);
* ``consume(batch)`` receives up to ``batch`` messages, acknowledges them, and returns the send
  times embedded in their bodies (for end-to-end latency); an empty list when none came within
  its short poll.

Bodies start with the send time (``time.time_ns()``, 8 bytes, big-endian) so end-to-end latency is
measured from the body alone, whatever the server.
"""

from __future__ import annotations

import abc
import itertools
import os
import struct
import time
import uuid
from dataclasses import dataclass

from benchmarks.harness import aio_channel
from rmqproxy.auth import signature
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

_STAMP = struct.Struct(">q")


def body(size: int) -> bytes:
    """A body of ``size`` bytes starting with the current time."""
    return _STAMP.pack(time.time_ns()) + b"x" * max(0, size - _STAMP.size)


def sent_ns(payload: bytes) -> int:
    value: int = _STAMP.unpack_from(payload)[0]
    return value


@dataclass(frozen=True)
class Target:
    """Where a driver connects and what it reads and writes."""

    kind: str
    """rmqproxy (also the echo server, which speaks the same protocol), rocketmq (Apache RocketMQ's proxy:
    the same protocol, after a Telemetry handshake), nats or rabbitmq."""
    address: str
    topics: tuple[str, ...]
    group: str
    size: int
    tls_ca: str | None = None
    """rmqproxy only: connect over TLS, trusting this PEM file (else plaintext)."""
    credentials: tuple[str, str] | None = None
    """rmqproxy only: sign every call as this (access key, secret key), as the clients do."""


class Driver(abc.ABC):
    def __init__(self, target: Target) -> None:
        self.target = target
        self._turn = itertools.count()

    def next_topic(self) -> str:
        return self.target.topics[next(self._turn) % len(self.target.topics)]

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def produce(self, batch: int) -> None: ...

    @abc.abstractmethod
    async def consume(self, batch: int) -> list[int]: ...

    @abc.abstractmethod
    async def close(self) -> None: ...


class RocketMQDriver(Driver):
    """Raw gRPC stubs of apache.rocketmq.v2 (not a client library: the client is not measured)."""

    async def connect(self) -> None:
        options: list[tuple[str, int | str]] = [("grpc.max_receive_message_length", -1),
                                                ("grpc.max_send_message_length", -1)]
        if "," in self.target.address:  # several nodes: spread the calls over them
            options.append(("grpc.lb_policy_name", "round_robin"))
        self._channel = aio_channel(self.target.address, self.target.tls_ca, options=options)
        self._stub = rpc_grpc.MessagingServiceStub(self._channel)  # type: ignore[no-untyped-call]
        client_id = f"bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._metadata: tuple[tuple[str, str], ...] = (("x-mq-client-id", client_id), ("x-mq-language", "PYTHON"))
        self._base_metadata = self._metadata
        self._signed_second = -1
        self._prefix = uuid.uuid4().hex[:16].upper()
        self._ids = itertools.count()
        self._receives: dict[str, rpc.ReceiveMessageRequest] = {}

    def _message(self, topic: str) -> pb.Message:
        message = pb.Message(body=body(self.target.size))
        message.topic.name = topic
        sp = message.system_properties
        sp.message_id = f"{self._prefix}{next(self._ids):018X}"
        sp.message_type = pb.MessageType.NORMAL
        sp.tag = "bench"
        return message

    def _signed(self) -> tuple[tuple[str, str], ...]:
        """The call's metadata; with credentials, signed as the clients sign (a new x-mq-date-time
        each second: the clients' dates have a second's resolution)."""
        credentials = self.target.credentials
        if credentials is None:
            return self._metadata
        second = int(time.time())
        if second != self._signed_second:
            date_time = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._metadata = (*self._base_metadata, ("x-mq-date-time", date_time),
                              ("authorization", signature.authorization(*credentials, date_time)))
            self._signed_second = second
        return self._metadata

    async def produce(self, batch: int) -> None:
        topic = self.next_topic()
        request = rpc.SendMessageRequest(messages=[self._message(topic) for _ in range(batch)])
        response = await self._stub.SendMessage(request, metadata=self._signed(), timeout=30)
        if response.status.code != pb.Code.OK:
            raise RuntimeError(f"send failed: {response.status.code} {response.status.message}")

    def _receive_request(self, topic: str, batch: int) -> rpc.ReceiveMessageRequest:
        request = self._receives.get(topic)
        if request is None:
            request = rpc.ReceiveMessageRequest(batch_size=batch, auto_renew=False)
            request.group.name = self.target.group
            request.message_queue.topic.name = topic
            request.message_queue.id = -1
            request.filter_expression.type = pb.FilterType.TAG
            request.filter_expression.expression = "*"
            request.invisible_duration.FromSeconds(30)
            request.long_polling_timeout.FromSeconds(1)
            self._receives[topic] = request
        return request

    async def consume(self, batch: int) -> list[int]:
        topic = self.next_topic()
        messages = [frame.message async for frame in
                    self._stub.ReceiveMessage(self._receive_request(topic, batch), metadata=self._signed(), timeout=10)
                    if frame.WhichOneof("content") == "message"]
        if not messages:
            return []
        ack = rpc.AckMessageRequest(entries=[rpc.AckMessageEntry(
            message_id=m.system_properties.message_id, receipt_handle=m.system_properties.receipt_handle)
            for m in messages])
        ack.group.name = self.target.group
        ack.topic.name = topic
        response = await self._stub.AckMessage(ack, metadata=self._signed(), timeout=30)
        if response.status.code not in (pb.Code.OK, pb.Code.MULTIPLE_RESULTS):
            raise RuntimeError(f"ack failed: {response.status.code} {response.status.message}")
        return [sent_ns(m.body) for m in messages]

    async def close(self) -> None:
        await self._channel.close()


class ApacheRocketMQDriver(RocketMQDriver):
    """The same driver for Apache RocketMQ's proxy, which answers ReceiveMessage only for a client whose
    Settings it holds: like every real client, it first opens Telemetry and writes its Settings (a simple
    consumer of the target's group and topics), and keeps that stream open while it runs. Connect-time only:
    the RPCs measured are the same as rmqproxy's."""

    async def connect(self) -> None:
        await super().connect()
        settings = pb.Settings(client_type=pb.ClientType.SIMPLE_CONSUMER)
        host, port = self.target.address.rsplit(":", 1)
        settings.access_point.scheme = pb.AddressScheme.IPv4
        settings.access_point.addresses.add(host=host, port=int(port))
        settings.request_timeout.FromSeconds(3)
        settings.subscription.group.name = self.target.group
        for topic in self.target.topics:
            entry = settings.subscription.subscriptions.add()
            entry.topic.name = topic
            entry.expression.type = pb.FilterType.TAG
            entry.expression.expression = "*"
        settings.user_agent.language = pb.Language.PYTHON
        settings.user_agent.version = "5.0.0"
        self._telemetry = self._stub.Telemetry(metadata=self._metadata)
        await self._telemetry.write(rpc.TelemetryCommand(settings=settings))
        answer = await self._telemetry.read()
        if not isinstance(answer, rpc.TelemetryCommand) or answer.status.code != pb.Code.OK:
            raise RuntimeError(f"telemetry settings refused: {answer}")

    async def close(self) -> None:
        self._telemetry.cancel()
        await super().close()


def make_driver(target: Target) -> Driver:
    if target.kind == "rmqproxy":
        return RocketMQDriver(target)
    if target.kind == "rocketmq":
        return ApacheRocketMQDriver(target)
    if target.kind == "nats":
        from benchmarks.peers import NatsDriver

        return NatsDriver(target)
    if target.kind == "rabbitmq":
        from benchmarks.peers import RabbitDriver

        return RabbitDriver(target)
    raise ValueError(f"unknown target kind {target.kind!r}")
