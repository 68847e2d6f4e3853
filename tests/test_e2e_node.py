"""The real rocketmq-client-nodejs 1.0.8 (npm) against the real server process, and across to Python.

The Node programs live in tests/clients/node/ (install them with `npm ci` there). A missing `node` or npm
package fails these tests instead of skipping them."""

from __future__ import annotations

from tests.node_support import assert_group_drained, check_produced, node
from tests.serverproc import ServerProcess

INVALID_RECEIPT_HANDLE = 40013


def setup_names(server: ServerProcess, name: str, *, queues: int = 8) -> tuple[str, str]:
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", str(queues))
    server.cli("group", "create", group)  # before sending: starts at the (empty) end
    return topic, group


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
