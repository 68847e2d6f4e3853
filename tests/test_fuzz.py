"""Property-based fuzzing of every RPC against the real server process.

Requests are generated from the protocol's own descriptors (tests/fuzz_messages.py), with odd
metadata, for every method of ``apache.rocketmq.v2.MessagingService`` (the ReceiveMessage and
Telemetry streams included) and of the admin API. The property: every call is answered within
its deadline with a protocol status, never INTERNAL_SERVER_ERROR / INTERNAL_ERROR and never a gRPC
INTERNAL or UNKNOWN; the server keeps running and never logs a traceback (checked at the end).

The short form runs in ``make test`` with fixed seeds (``derandomize``), so CI is repeatable; the
long form is a command that explores with fresh randomness:

    RMQPROXY_FUZZ_EXAMPLES=2000 RMQPROXY_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/test_fuzz.py -n 2
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2, admin_pb2, clients_pb2, messages_pb2
from tests.e2e_support import shared_server
from tests.fuzz_messages import is_repeated, message_class, messages, metadata
from tests.serverproc import ServerProcess

EXAMPLES = int(os.environ.get("RMQPROXY_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("RMQPROXY_FUZZ_RANDOM", "") not in ("", "0")
UNARY_DEADLINE_S = 20
STREAM_DEADLINE_S = 3
"""Streams may legitimately stay open (a long poll, a Telemetry session): the client gives up
after this and the call counts as answered when it ended with DEADLINE_EXCEEDED."""

MESSAGING = service_pb2.DESCRIPTOR.services_by_name["MessagingService"]
ADMIN = admin_pb2.DESCRIPTOR.services_by_name["Admin"]
ACCESS = access_pb2.DESCRIPTOR.services_by_name["Access"]
CLIENTS = clients_pb2.DESCRIPTOR.services_by_name["Clients"]
MESSAGES = messages_pb2.DESCRIPTOR.services_by_name["Messages"]
METHODS = [*MESSAGING.methods, *MESSAGES.methods, *CLIENTS.methods, *ACCESS.methods, *ADMIN.methods]
"""Admin last: it deletes what the others use."""

BAD_CODES = {pb.Code.INTERNAL_SERVER_ERROR, pb.Code.INTERNAL_ERROR}
BAD_GRPC = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

TOPICS = {"fuzz-normal": "normal", "fuzz-fifo": "fifo", "fuzz-delay": "delay", "fuzz-tx": "transaction"}
GROUPS = {"fuzz-group": (), "fuzz-fifo-group": ("--fifo",)}
NAMES = (*TOPICS, *GROUPS, "fuzz-client", "%DLQ%fuzz-group", "nope-not-there")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared_server(tmp_path_factory.mktemp("fuzz-server")) as proc:
        for topic, kind in TOPICS.items():
            proc.cli("topic", "create", topic, "--type", kind)
        for group, options in GROUPS.items():
            proc.cli("group", "create", group, *options)
        yield proc


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=60)
        yield chan


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _call(channel: grpc.Channel, method: MethodDescriptor, requests: list[Message],
          headers: tuple[tuple[str, str], ...]) -> list[Message]:
    """Invoke ``method`` the way a client would; its responses (or the RpcError it ended with)."""
    response_class = message_class(method.output_type)
    serialize = type(requests[0]).SerializeToString
    deserialize = response_class.FromString
    path = _path(method)
    if method.client_streaming:
        bidi = channel.stream_stream(path, request_serializer=serialize, response_deserializer=deserialize)
        return list(bidi(iter(requests), metadata=headers, timeout=STREAM_DEADLINE_S))
    if method.server_streaming:
        stream = channel.unary_stream(path, request_serializer=serialize, response_deserializer=deserialize)
        return list(stream(requests[0], metadata=headers, timeout=STREAM_DEADLINE_S))
    unary = channel.unary_unary(path, request_serializer=serialize, response_deserializer=deserialize)
    return [unary(requests[0], metadata=headers, timeout=UNARY_DEADLINE_S)]


def _statuses(response: Message) -> Iterator[Any]:
    """Every protocol Status inside a response (top level, or in a Telemetry command)."""
    for field, value in response.ListFields():
        if field.message_type is not None and field.message_type.full_name == "apache.rocketmq.v2.Status":
            yield value
        elif field.message_type is not None and not is_repeated(field):
            yield from _statuses(value)


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_every_rpc_answers_generated_requests_with_a_protocol_status(
        server: ServerProcess, channel: grpc.Channel, method: MethodDescriptor) -> None:
    request = messages(method.input_type, NAMES)
    requests = st.lists(request, min_size=1, max_size=3) if method.client_streaming else request.map(lambda r: [r])

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              suppress_health_check=list(HealthCheck))
    @given(requests=requests, headers=metadata())
    def check(requests: list[Message], headers: tuple[tuple[str, str], ...]) -> None:
        try:
            responses = _call(channel, method, requests, headers)
        except grpc.RpcError as error:
            code = error.code()
            streaming = method.client_streaming or method.server_streaming
            assert code not in BAD_GRPC, f"{method.name}: gRPC {code}: {error.details()}\n{requests}\n{headers}"
            assert code != grpc.StatusCode.DEADLINE_EXCEEDED or streaming, (
                f"{method.name} was not answered within {UNARY_DEADLINE_S} s\n{requests}")
            responses = []
        for response in responses:
            for status in _statuses(response):
                assert status.code not in BAD_CODES, (
                    f"{method.name}: {pb.Code.Name(status.code)} {status.message!r}\n{requests}\n{headers}")
        assert server.process is not None and server.process.poll() is None, "the server died"

    check()
