"""Server-side filtering (tags and SQL92) with the real rocketmq-client-nodejs 1.0.8: the Node version of
test_e2e_filter.py.

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


def test_node_tag_filters_deliver_exactly_the_matching_messages(server: ServerProcess, name: str) -> None:
    topic = f"{name}-t"
    groups = {suffix: f"{name}-{suffix}" for suffix in ("one", "two", "all")}
    setup(server, topic, list(groups.values()))
    sent = produce(server, topic, 60)
    expected = {
        "one": {i for i, n in sent.items() if n % 3 == 1},
        "two": {i for i, n in sent.items() if n % 3 in (0, 2)},
        "all": set(sent),
    }
    tags = {"one": "tag-1", "two": "tag-0 || tag-2", "all": "*"}
    for suffix, tag in tags.items():
        result = consume_simple(server, topic, groups[suffix], len(expected[suffix]), "--tag", tag)
        ids = received_ids(result)
        assert len(ids) == len(set(ids)), f"{suffix}: a message came twice"
        assert set(ids) == expected[suffix], suffix
        for message in result["received"]:
            index = sent[message["message_id"]]
            assert message["tag"] == f"tag-{index % 3}" and message["properties"]["index"] == str(index)
            assert message["delivery_attempt"] == 1
    # What a filter rejected counts as consumed: nothing ready or in flight, every queue committed to its end.
    for group in groups.values():
        assert_group_drained(server, group, topic, 60)


def test_node_simple_consumer_sql92_filter_over_properties_and_tags(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    setup(server, topic, [group])
    sent = produce(server, topic, 60)
    sql = "index >= 10 AND index < 40 AND (TAGS = 'tag-0' OR TAGS = 'tag-2') AND origin = 'node'"
    wanted = {i for i, n in sent.items() if 10 <= n < 40 and n % 3 in (0, 2)}
    result = consume_simple(server, topic, group, len(wanted), "--sql", sql)
    ids = received_ids(result)
    assert len(ids) == len(set(ids)) and set(ids) == wanted
    assert {m["delivery_attempt"] for m in result["received"]} == {1}
    assert_group_drained(server, group, topic, 60)


def test_node_push_consumer_sql92_filter_consumes_each_matching_message_once(server: ServerProcess,
                                                                           name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    setup(server, topic, [group], queues=2)
    sent = produce(server, topic, 60)
    sql = "(index BETWEEN 5 AND 24 OR index = 50) AND TAGS IN ('tag-0', 'tag-2')"
    wanted = {i for i, n in sent.items() if (5 <= n <= 24 or n == 50) and n % 3 in (0, 2)}
    assert len(wanted) == 15
    result = node("push_consume", server.address, topic, group, str(len(wanted)), "--sql", sql,
                  "--max-wait", "90", "--linger", LINGER_S)
    assert result["startup_error"] is None
    assert result["reached_expect_s"] is not None, f"only {len(result['counts'])} of {len(wanted)} consumed"
    assert result["shutdown"] == "ok"
    assert set(result["counts"]) == wanted
    assert set(result["counts"].values()) == {1}
    assert {a for attempts in result["attempts"].values() for a in attempts} == {1}
    for message_id, message in result["messages"].items():
        assert message["properties"]["index"] == str(sent[message_id])
    assert_group_drained(server, group, topic, 60)


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
