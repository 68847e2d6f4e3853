"""The real rocketmq-client-nodejs 1.0.8 (npm) against the real server process, and across to Python.

The Node programs live in tests/clients/node/ (install them with `npm ci` there). A missing `node` or npm
package fails these tests instead of skipping them."""

from __future__ import annotations

import time

from tests.node_support import assert_group_drained, check_produced, expected_fields, node
from tests.serverproc import ServerProcess, python_client

N = 1000
INVALID_RECEIPT_HANDLE = 40013


def setup_names(server: ServerProcess, name: str, *, queues: int = 8) -> tuple[str, str]:
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", str(queues))
    server.cli("group", "create", group)  # before sending: starts at the (empty) end
    return topic, group


def test_node_producer_then_node_simple_consumer_receives_every_field(server: ServerProcess,
                                                                      name: str) -> None:
    topic, group = setup_names(server, name)
    started_ms = time.time() * 1000
    produced = node("produce", server.address, topic, str(N), "--mode", "mixed")
    sent_ids = check_produced(produced, N)
    assert {s["mode"] for s in produced["sent"]} == {"sequential", "concurrent"}
    sent_offsets = {s["message_id"]: s["offset"] for s in produced["sent"]}

    consumed = node("simple_consume", server.address, topic, group, str(N), "--ack", "--max-wait", "120")
    finished_ms = time.time() * 1000
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    received = consumed["received"]
    assert sorted(m["message_id"] for m in received) == sorted(sent_ids)  # each exactly once
    assert len({m["receipt_handle"] for m in received}) == N
    for message in received:
        index = sent_ids[message["message_id"]]
        assert {k: message[k] for k in ("body", "tag", "keys", "properties")} == \
            expected_fields(index, "node", "node"), message
        assert message["topic"] == topic
        assert message["delivery_attempt"] == 1
        assert message["corrupted"] is False  # the client checked the body digest against the body
        assert message["queue_offset"] == sent_offsets[message["message_id"]]  # as the send receipt said
        assert started_ms - 5000 <= message["born_timestamp"] <= finished_ms
        assert message["born_host"]
        assert message["message_group"] in ("", None)
        assert message["delivery_timestamp"] is None
        assert message["transport_delivery_timestamp"] is not None
    assert_group_drained(server, group, topic, N)


def test_unacked_message_returns_and_change_invisible_duration_postpones_it(server: ServerProcess,
                                                                          name: str) -> None:
    topic, group = setup_names(server, name, queues=2)
    [message_id] = check_produced(node("produce", server.address, topic, "1", "--mode", "sequential"), 1)
    result = node("invisibility", server.address, topic, group)
    assert result["first"] == {"message_id": message_id, "attempt": 1}
    assert result["early_receive_count"] == 0
    assert result["second"]["message_id"] == message_id and result["second"]["attempt"] == 2
    assert 9.0 <= result["second"]["after_s"] <= 17.0
    assert result["handle_changed"] is True
    assert result["old_handle_ack"]["code"] == INVALID_RECEIPT_HANDLE, result["old_handle_ack"]
    assert result["receive_after_change"] is None
    assert result["receive_after_change_window_s"] >= 8.0
    assert result["third"]["message_id"] == message_id and result["third"]["attempt"] == 3
    assert 14.0 <= result["third"]["after_s"] <= 22.0
    # Once redelivered, the handle the change returned is superseded too.
    assert result["stale_new_handle_ack"]["code"] == INVALID_RECEIPT_HANDLE, result["stale_new_handle_ack"]
    assert result["third_ack"] == "accepted"
    assert_group_drained(server, group, topic, 1)


def test_node_push_consumer_consumes_each_message_exactly_once(server: ServerProcess, name: str) -> None:
    topic, group = setup_names(server, name)
    sent_ids = check_produced(node("produce", server.address, topic, str(N), "--mode", "concurrent"), N)
    result = node("push_consume", server.address, topic, group, str(N), "--max-wait", "120")
    assert result["reached_expect_s"] is not None, f"only {len(result['counts'])} of {N} consumed"
    assert result["shutdown"] == "ok"
    assert set(result["counts"]) == set(sent_ids)
    assert set(result["counts"].values()) == {1}
    assert {a for attempts in result["attempts"].values() for a in attempts} == {1}
    for message_id, message in result["messages"].items():
        index = sent_ids[message_id]
        assert {k: message[k] for k in ("body", "tag", "keys", "properties")} == \
            expected_fields(index, "node", "node"), message
        assert message["topic"] == topic and message["corrupted"] is False
    assert_group_drained(server, group, topic, N)


CROSS_N = 300


def test_node_producer_to_python_simple_consumer(server: ServerProcess, name: str) -> None:
    topic, group = setup_names(server, name)
    sent_ids = check_produced(node("produce", server.address, topic, str(CROSS_N)), CROSS_N)
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(CROSS_N),
                             "--ack", "--max-wait", "90")
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    received = consumed["received"]
    assert sorted(m["message_id"] for m in received) == sorted(sent_ids)
    for message in received:
        index = sent_ids[message["message_id"]]
        assert {k: message[k] for k in ("body", "tag", "keys", "properties")} == \
            expected_fields(index, "node", "node"), message
        assert message["topic"] == topic
        assert message["delivery_attempt"] == 1
        assert message["corrupted"] is False
        assert message["message_type"] == 1  # NORMAL
        assert message["born_timestamp"] > 0 and message["born_host"]
    assert_group_drained(server, group, topic, CROSS_N)


def test_python_producer_to_node_simple_consumer(server: ServerProcess, name: str) -> None:
    topic, group = setup_names(server, name)
    produced = python_client("produce", server.address, topic, str(CROSS_N), "--mode", "mixed")
    sent_ids = check_produced(produced, CROSS_N)
    consumed = node("simple_consume", server.address, topic, group, str(CROSS_N), "--ack", "--max-wait", "90")
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    received = consumed["received"]
    assert sorted(m["message_id"] for m in received) == sorted(sent_ids)
    for message in received:
        index = sent_ids[message["message_id"]]
        assert {k: message[k] for k in ("body", "tag", "keys", "properties")} == \
            expected_fields(index, "python", "m"), message
        assert message["topic"] == topic
        assert message["delivery_attempt"] == 1
        assert message["corrupted"] is False
        assert message["born_timestamp"] > 0 and message["born_host"]
    assert_group_drained(server, group, topic, CROSS_N)
