"""The real rocketmq-python-client 5.1.2 against the real server process."""

from __future__ import annotations

import base64

from tests.serverproc import ServerProcess, python_client

N = 1000
INVALID_RECEIPT_HANDLE = 40013


def setup_names(server: ServerProcess, name: str, *, queues: int = 8) -> tuple[str, str]:
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", str(queues))
    server.cli("group", "create", group)  # before sending: starts at the (empty) end
    return topic, group


def expected_fields(index: int) -> dict[str, object]:
    return {
        "tag": f"tag-{index % 3}",
        "keys": sorted([f"key-{index}", f"order-{index // 10}"]),
        "properties": {"index": str(index), "origin": "python"},
    }


def test_send_sync_and_async_then_simple_consumer_receives_every_field(server: ServerProcess, name: str) -> None:
    topic, group = setup_names(server, name)
    produced = python_client("produce", server.address, topic, str(N), "--mode", "mixed")
    assert produced["errors"] == []
    assert len(produced["sent"]) == N
    assert {s["mode"] for s in produced["sent"]} == {"sync", "async"}
    sent_ids = {s["message_id"]: s["index"] for s in produced["sent"]}
    assert len(sent_ids) == N

    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(N), "--ack",
                             "--max-wait", "120")
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    received = consumed["received"]
    assert sorted(m["message_id"] for m in received) == sorted(sent_ids)
    for message in received:
        index = sent_ids[message["message_id"]]
        body = base64.b64decode(message["body"])
        assert body.startswith(f"m-{index}:".encode()) and len(body) == 100
        assert {k: message[k] for k in ("tag", "keys", "properties")} == expected_fields(index)
        assert message["topic"] == topic
        assert message["delivery_attempt"] == 1
        assert message["corrupted"] is False  # the client checked the MD5 digest we sent
        assert message["message_type"] == 1  # NORMAL
        assert message["born_timestamp"] > 0
        assert message["born_host"]

    progress = server.cli_json("group", "describe", group)["topics"]
    assert [(t["topic"], t["ready"], t["inflight"]) for t in progress] == [(topic, 0, 0)]
    for queue in progress[0]["queues"]:
        assert queue["committed_offset"] == queue["max_offset"]
    assert sum(q["max_offset"] for q in progress[0]["queues"]) == N


def test_unacked_message_returns_and_change_invisible_duration_postpones_it(server: ServerProcess,
                                                                          name: str) -> None:
    topic, group = setup_names(server, name, queues=2)
    assert python_client("produce", server.address, topic, "1", "--mode", "sync")["errors"] == []
    result = python_client("invisibility", server.address, topic, group)
    message_id = result["first"]["message_id"]
    assert result["first"]["attempt"] == 1
    assert result["early_receive_count"] == 0
    assert result["second"]["message_id"] == message_id and result["second"]["attempt"] == 2
    assert 9.0 <= result["second"]["after_s"] <= 17.0
    assert result["handle_changed"] is True
    assert result["old_handle_ack"]["code"] == INVALID_RECEIPT_HANDLE
    assert result["third"]["message_id"] == message_id and result["third"]["attempt"] == 3
    assert 14.0 <= result["third"]["after_s"] <= 22.0
    # Once redelivered, the handle the change returned is superseded too.
    assert result["stale_new_handle_ack"]["code"] == INVALID_RECEIPT_HANDLE
    assert result["third_acked"] is True


def test_push_consumer_consumes_each_message_exactly_once(server: ServerProcess, name: str) -> None:
    topic, group = setup_names(server, name)
    produced = python_client("produce", server.address, topic, str(N), "--mode", "async")
    assert produced["errors"] == []
    result = python_client("push_consume", server.address, topic, group, "--expect", str(N), "--max-wait", "120")
    counts = result["counts"]
    assert set(counts) == {s["message_id"] for s in produced["sent"]}
    assert set(counts.values()) == {1}
    assert {a for attempts in result["attempts"].values() for a in attempts} == {1}
    progress = server.cli_json("group", "describe", group)["topics"][0]
    assert (progress["ready"], progress["inflight"]) == (0, 0)
