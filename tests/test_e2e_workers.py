"""``serve --workers 2``: every worker serves every client, whichever worker each connection reached.

Clients here are pinned to a worker (tests/workers_support.py finds where a connection landed), so
each case really crosses workers: a long poll on worker 1 woken by a send on worker 2, a timer due
while both run its loop's candidates, a transaction check answered by a producer connected to the
worker that does not run the checks, FIFO queues dealt over consumers of both workers, TLS on each.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from tests.clientchecks import Client, check_sent, setup
from tests.serverproc import ServerProcess, python_client
from tests.test_e2e_bad_input import METADATA, message, receive, send
from tests.test_e2e_transaction_schedule import RawProducer
from tests.workers_support import lease_holder, pinned_channel, workers

WAKE_LIMIT_S = 0.050


def stub(channel: grpc.Channel) -> rpc_grpc.MessagingServiceStub:
    return rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]


def two_workers(server_with: Callable[..., ServerProcess], *args: str) -> ServerProcess:
    server = server_with("--workers", "2", *args)
    assert sorted(workers(server)) == [1, 2], server.log()[-2000:]
    return server


def test_a_long_poll_on_one_worker_wakes_within_50_ms_of_a_send_on_the_other(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    receiver, sender = pinned_channel(server, 1), pinned_channel(server, 2)
    latencies = []
    for _ in range(5):
        arrived: list[float] = []

        def poll(arrived: list[float] = arrived) -> None:
            statuses, messages = receive(stub(receiver), group, topic, poll_s=15)
            arrived.append(time.monotonic())
            assert len(messages) == 1, statuses

        polling = threading.Thread(target=poll)
        polling.start()
        time.sleep(0.5)  # the receive is waiting on worker 1 by now
        response = send(stub(sender), message(topic))
        sent = time.monotonic()
        assert response.status.code == pb.Code.OK, response.status
        polling.join(20)
        assert arrived, "the long poll never returned"
        latencies.append(arrived[0] - sent)
    # Without the bus the poll would run its whole 15 s: every wake is far below that, and the
    # typical one (the median of five, measured by this client from the send's answer) under 50 ms.
    assert max(latencies) < 1.0, latencies
    assert statistics.median(latencies) < WAKE_LIMIT_S, latencies


def test_scheduled_messages_fire_exactly_once_with_two_workers(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "2")
    server.cli("group", "create", group)
    one, two = pinned_channel(server, 1), pinned_channel(server, 2)
    due = int(time.time() * 1000) + 2500
    sent = []
    for index, channel in enumerate([one, two] * 10):
        delayed = message(topic, f"m{index}".encode(), message_type=pb.MessageType.DELAY)
        delayed.system_properties.delivery_timestamp.FromMilliseconds(due)
        response = send(stub(channel), delayed)
        assert response.status.code == pb.Code.OK, response.status
        sent.append(response.entries[0].message_id)
    received: list[str] = []
    deadline = time.monotonic() + 30
    while len(received) < len(sent) and time.monotonic() < deadline:
        for channel in (one, two):
            _, messages = receive(stub(channel), group, topic, poll_s=2, batch=32)
            received += [m.system_properties.message_id for m in messages]
    assert sorted(received) == sorted(sent), "a timer fired twice or never"
    time.sleep(1.5)  # a second firing would be receivable by now
    for channel in (one, two):
        assert receive(stub(channel), group, topic, poll_s=1)[1] == []
    assert server.cli_json("topic", "describe", topic)["pending_timers"] == 0


def test_a_transaction_check_reaches_a_producer_connected_to_the_other_worker(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with, "--transaction-check-first", "1s")
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction", "--queues", "2")
    server.cli("group", "create", group)
    checker = lease_holder(server, "transaction checks")
    other = 2 if checker == 1 else 1
    producer = RawProducer(server.address, topic, pinned_channel(server, other))
    try:
        time.sleep(0.5)  # the checker learns of the producer from the bus
        half = producer.send_half("left-open")
        _, command = producer.checks.get(timeout=30)
        assert command.transaction_id == half[1]
        producer.end(*half, commit=True)
    finally:
        producer.close()
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "1", "--ack")
    assert [m["message_id"] for m in consumed["received"]] == [half[0]]


def _open_consumer(channel: grpc.Channel, client_id: str, group: str, topic: str) -> tuple[object, list[object]]:
    settings = pb.Settings(client_type=pb.ClientType.PUSH_CONSUMER, subscription=pb.Subscription(
        group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))]))
    requests: list[object] = [rpc.TelemetryCommand(settings=settings)]
    done = threading.Event()

    def commands():  # type: ignore[no-untyped-def]
        yield from requests
        done.wait()

    metadata = (("x-mq-client-id", client_id), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))
    call = stub(channel).Telemetry(commands(), metadata=metadata)
    first = next(iter(call))
    assert first.HasField("settings"), first
    return call, [done]


def test_fifo_queues_are_dealt_over_consumers_of_both_workers_and_describe_shows_them(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "fifo", "--queues", "4")
    server.cli("group", "create", group, "--fifo")
    one, two = pinned_channel(server, 1), pinned_channel(server, 2)
    streams = [_open_consumer(one, "consumer-a", group, topic), _open_consumer(two, "consumer-b", group, topic)]
    try:
        time.sleep(1)  # each worker hears of the other's consumer
        for channel in (one, two):  # the admin API answers on each worker alike
            described = api_grpc.AdminStub(channel).DescribeGroup(  # type: ignore[no-untyped-call]
                api.DescribeGroupRequest(name=group), timeout=30)
            assert sorted(c.client_id for c in described.consumers) == ["consumer-a", "consumer-b"], described
        # Each worker deals the queues over both consumers: a's and b's shares are disjoint, together all.
        assigned = {}
        for client_id, channel in (("consumer-a", one), ("consumer-b", two)):
            metadata = (("x-mq-client-id", client_id), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))
            answer = stub(channel).QueryAssignment(rpc.QueryAssignmentRequest(
                topic=pb.Resource(name=topic), group=pb.Resource(name=group)), metadata=metadata, timeout=30)
            assert answer.status.code == pb.Code.OK, answer.status
            assigned[client_id] = {a.message_queue.id for a in answer.assignments}
        assert assigned["consumer-a"].isdisjoint(assigned["consumer-b"]), assigned
        assert assigned["consumer-a"] | assigned["consumer-b"] == {0, 1, 2, 3}, assigned
    finally:
        for call, (done,) in streams:
            done.set()  # type: ignore[attr-defined]
            call.cancel()  # type: ignore[attr-defined]


def test_every_worker_serves_tls(server_with: Callable[..., ServerProcess]) -> None:
    server = two_workers(server_with)
    ca = (server.data_dir / "tls" / "cert.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    for worker in (1, 2):
        channel = pinned_channel(server, worker, credentials=credentials, target=f"localhost:{server.port}")
        try:
            answer = stub(channel).QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name="nope-topic")),
                                              metadata=METADATA, timeout=30)
            assert answer.status.code == pb.Code.TOPIC_NOT_FOUND, answer.status
        finally:
            channel.close()


@pytest.mark.parametrize("language", ["go", "java"])
@pytest.mark.timeout(600)
def test_an_official_client_against_two_workers(server_with: Callable[..., ServerProcess], name: str,
                                               language: str) -> None:
    """Each client opens several connections (Telemetry, sends, receives): they spread over both workers."""
    server = two_workers(server_with)
    client = Client(language, server)
    topic, group = setup(server, name, queues=4)
    sent = check_sent(client.run("produce", topic=topic, count=20, mode="mixed", prefix="workers"), 20)
    consumed = client.run("simple-consume", topic=topic, group=group, expect=20, ack=True, max_wait_s=120)
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(sent)
