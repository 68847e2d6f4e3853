"""The real rocketmq-python-client 5.1.2 against the real server process: redelivery and changes of
invisible duration, timed. (Sending, receiving and push consuming with every client: tests/test_clients.py.)"""

from __future__ import annotations

from tests.serverproc import ServerProcess, python_client

INVALID_RECEIPT_HANDLE = 40013


def setup_names(server: ServerProcess, name: str, *, queues: int = 8) -> tuple[str, str]:
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", str(queues))
    server.cli("group", "create", group)  # before sending: starts at the (empty) end
    return topic, group


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
