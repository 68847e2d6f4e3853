"""Refused Telemetry settings, per client language, over raw gRPC against a real server.

Most clients learn that their settings were refused from a status command on the open stream
(the Node.js client rejects startup() with its code). The Go client ignores such a command and
its Start() waits until the stream fails, so for it the stream ends with the error instead.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests.serverproc import ServerProcess

TIMEOUT = 30


def _settings(language: int, group: str, topic: str, sql: str) -> pb.Settings:
    return pb.Settings(
        client_type=pb.ClientType.SIMPLE_CONSUMER,
        request_timeout=Duration(seconds=3),
        subscription=pb.Subscription(group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=pb.FilterType.SQL, expression=sql))]),
        user_agent=pb.UA(language=language, version="5.1.4", platform="test", hostname="test"))


@pytest.fixture
def stub(server: ServerProcess, name: str) -> Iterator[Any]:
    server.cli("topic", "create", name)
    server.cli("group", "create", name)
    with grpc.insecure_channel(server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        yield rpc_grpc.MessagingServiceStub(channel)


def _open(stub: Any, language: int, client_id: str, settings: pb.Settings) -> tuple[Any, queue.Queue[Any]]:
    """A Telemetry stream that writes the settings and stays open until ``requests.put(None)``."""
    requests: queue.Queue[Any] = queue.Queue()
    requests.put(rpc.TelemetryCommand(settings=settings))
    metadata = (("x-mq-client-id", client_id), ("x-mq-language", pb.Language.Name(language)))
    call = stub.Telemetry(iter(requests.get, None), metadata=metadata, timeout=TIMEOUT)
    return call, requests


def test_a_go_client_with_refused_settings_sees_its_stream_fail(stub: Any, name: str) -> None:
    call, requests = _open(stub, pb.Language.GOLANG, "go-client-1", _settings(pb.Language.GOLANG, name, name, "a >"))
    try:
        with pytest.raises(grpc.RpcError) as raised:
            next(call)
    finally:
        requests.put(None)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value
    assert "ILLEGAL_FILTER_EXPRESSION" in (raised.value.details() or ""), raised.value.details()


def test_other_clients_get_a_status_command_and_an_open_stream(stub: Any, name: str) -> None:
    call, requests = _open(stub, pb.Language.JAVA, "java-client-1", _settings(pb.Language.JAVA, name, name, "a >"))
    try:
        answer = next(call)
        assert answer.status.code == pb.Code.ILLEGAL_FILTER_EXPRESSION, answer
        assert not answer.HasField("settings"), answer
        # Still open: corrected settings on the same stream are accepted.
        requests.put(rpc.TelemetryCommand(settings=_settings(pb.Language.JAVA, name, name, "a > 1")))
        answer = next(call)
        assert answer.status.code == pb.Code.OK and answer.HasField("settings"), answer
    finally:
        requests.put(None)
        call.cancel()


def _metric_answer(server: ServerProcess, name: str, language: int) -> pb.Metric:
    """The metrics part of the settings the server answers a producer of ``language``."""
    server.cli("topic", "create", name)
    settings = pb.Settings(client_type=pb.ClientType.PRODUCER, request_timeout=Duration(seconds=3),
                           access_point=pb.Endpoints(addresses=[pb.Address(host="127.0.0.1", port=server.port)]),
                           publishing=pb.Publishing(topics=[pb.Resource(name=name)]),
                           user_agent=pb.UA(language=language, version="5.1.4", platform="test", hostname="test"))
    with grpc.insecure_channel(server.address) as channel:
        call, requests = _open(rpc_grpc.MessagingServiceStub(channel), language, f"client-{language}", settings)
        try:
            answer = next(call)
        finally:
            requests.put(None)
            call.cancel()
    assert answer.HasField("settings"), answer
    return answer.settings.metric


@pytest.mark.parametrize("mode", ["disabled", "permissive"])
def test_go_clients_export_metrics_only_where_tls_is_served(server_with: Any, name: str, mode: str) -> None:
    # The Go client dials TLS for its metrics whatever its own setting: a plaintext-only port turns them off.
    server = server_with("--tls-mode", mode)
    assert _metric_answer(server, f"{name}-go", pb.Language.GOLANG).on == (mode != "disabled")
    java = _metric_answer(server, f"{name}-java", pb.Language.JAVA)
    assert java.on and java.endpoints.addresses[0].port == server.port
