"""Invalid SQL92 filters as the real rocketmq-client-nodejs 1.0.8 sees them. (Tag and SQL92 filters that
work, with every client: tests/test_clients.py.)

The Node client takes a subscription as a tag expression string or as a FilterExpression, whose type is the
protobuf FilterType (TAG or SQL): simple_consume.js and push_consume.js build one from --tag / --sql
(tests/clients/node/_filter.js). The client puts its subscriptions in the Telemetry settings it sends at startup
and the filter in every ReceiveMessage.

An invalid SQL92 expression, as the Node client sees it:
* in the settings (the expression given to the constructor): the server answers the settings with a
  TelemetryCommand carrying status 40010 "invalid SQL92 filter: ... at position N ..." and no settings, and keeps
  the stream open. The client's onUnknownCommand turns that status into a startup() rejection, so a
  PushConsumer or SimpleConsumer so configured fails to start at once, with the code, and consumes nothing.
  (Ending the stream with a gRPC error instead, as the reference proxy does for a failed settings command,
  leaves startup() waiting forever while the client reconnects and resends the settings every second.)
* in a ReceiveMessage (a SimpleConsumer that calls subscribe() after startup, which sends no settings):
  receive() rejects with a BadRequestException, code 40010, whose message says where the problem is.
"""

from __future__ import annotations

from typing import Any

from tests.node_support import assert_group_drained, check_produced, node
from tests.serverproc import ServerProcess

ILLEGAL_FILTER_EXPRESSION = 40010
LINGER_S = "4"  # consumers keep receiving this long after the last expected message: nothing else may come


def produce(server: ServerProcess, topic: str, count: int) -> dict[str, int]:
    """Send ``count`` messages with tag tag-{i % 3} and properties index=i, origin=node; message id -> i."""
    return check_produced(node("produce", server.address, topic, str(count), "--mode", "mixed"), count)


def setup(server: ServerProcess, topic: str, groups: list[str], queues: int = 4) -> None:
    server.cli("topic", "create", topic, "--queues", str(queues))
    for group in groups:
        server.cli("group", "create", group)  # before sending: starts at the (empty) end


def consume_simple(server: ServerProcess, topic: str, group: str, expect: int, *filter_args: str) -> Any:
    """A Node SimpleConsumer that acks what it receives, until ``expect`` messages and LINGER_S more seconds."""
    result = node("simple_consume", server.address, topic, group, str(expect), *filter_args, "--ack",
                  "--max-wait", "90", "--linger", LINGER_S)
    assert result["startup_error"] is None
    assert result["receive_errors"] == [] and result["ack_errors"] == []
    return result


def received_ids(result: Any) -> list[str]:
    return [m["message_id"] for m in result["received"]]


INVALID_SQL = "index > = 3"  # the second '=' (position 8) cannot start an operand


def check_refused_at_startup(result: Any) -> None:
    """startup() rejected with the server's status for the settings: 40010, naming the position; and the
    client did not keep reconnecting (a refused settings command does not end the Telemetry stream)."""
    error = result["startup_error"]
    assert error is not None and error["code"] == ILLEGAL_FILTER_EXPRESSION, result
    assert "position 8" in error["error"], error
    assert not [line for line in result["client_log"] if "stream response observer" in line["message"]]


def test_an_invalid_sql92_expression_is_an_error_in_the_node_simple_consumer(server: ServerProcess,
                                                                            name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    setup(server, topic, [group], queues=1)
    sent = produce(server, topic, 5)
    # Subscribed after startup, the expression reaches the server in ReceiveMessage: receive() rejects.
    result = node("simple_consume", server.address, topic, group, "1", "--sql", INVALID_SQL,
                  "--subscribe-after-startup", "--max-wait", "3", "--error-pause", "0.2")
    assert result["startup_error"] is None
    assert result["received"] == []
    errors = result["receive_errors"]
    assert errors and len(errors) == result["receive_calls"]
    assert {(e["code"], e["name"]) for e in errors} == {(ILLEGAL_FILTER_EXPRESSION, "BadRequestException")}
    assert "position 8" in errors[0]["error"], errors[0]
    # Given to the constructor, it is in the settings the client sends at startup, which fails.
    result = node("simple_consume", server.address, topic, group, "1", "--sql", INVALID_SQL, "--startup-wait", "8")
    check_refused_at_startup(result)
    assert result["receive_calls"] == 0
    # Nothing was consumed or filtered away: a consumer with a valid filter still gets every message, first try.
    result = consume_simple(server, topic, group, 5, "--sql", "index >= 0")
    assert sorted(received_ids(result)) == sorted(sent)
    assert {m["delivery_attempt"] for m in result["received"]} == {1}
    assert_group_drained(server, group, topic, 5)


def test_an_invalid_sql92_expression_keeps_a_node_push_consumer_from_starting(server: ServerProcess,
                                                                             name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    setup(server, topic, [group], queues=2)
    sent = produce(server, topic, 5)
    result = node("push_consume", server.address, topic, group, "1", "--sql", INVALID_SQL, "--startup-wait", "8",
                  "--max-wait", "3", "--linger", "0")
    check_refused_at_startup(result)
    assert result["started_late_s"] is None
    assert result["counts"] == {}
    # The group never read the topic (describe lists no progress for it), and a push consumer with a valid
    # filter then consumes every message, each once, at its first attempt.
    assert server.cli_json("group", "describe", group)["topics"] == []
    result = node("push_consume", server.address, topic, group, "5", "--sql", "index >= 0", "--max-wait", "60",
                  "--linger", "2")
    assert result["startup_error"] is None and result["shutdown"] == "ok"
    assert result["counts"] == {message_id: 1 for message_id in sent}
    assert {a for attempts in result["attempts"].values() for a in attempts} == {1}
    assert_group_drained(server, group, topic, 5)
