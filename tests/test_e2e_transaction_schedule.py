"""When the server checks a half message with its producer, on the default schedule and on the
message's own ``orphaned_transaction_recovery_duration``.

No official client sets that duration (the Python, Node.js and Rust clients leave it out), so the
producer here speaks raw gRPC: it opens Telemetry with producer settings, sends half messages,
records when each RecoverOrphanedTransactionCommand arrives on its stream and answers with
EndTransaction (source SOURCE_SERVER_CHECK), as the clients' checkers do. The real Python client
then consumes what was committed.
"""

from __future__ import annotations

import datetime
import queue
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests.serverproc import ServerProcess, python_client
from tests.test_e2e_scheduled import LATE_MS

DEFAULT_FIRST_CHECK_MS = 6_000
DEFAULT_CHECK_INTERVAL_MS = 30_000
OWN_RECOVERY_MS = 2_000


def epoch_ms() -> int:
    return int(time.time() * 1000)


class RawProducer:
    """A transactional producer over raw gRPC with its Telemetry stream open."""

    def __init__(self, address: str, topic: str, channel: grpc.Channel | None = None) -> None:
        self.topic = topic
        self.channel = channel or grpc.insecure_channel(address)
        self.stub = rpc_grpc.MessagingServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.metadata = (("x-mq-client-id", f"raw-producer-{uuid.uuid4().hex[:8]}"), ("x-mq-language", "PYTHON"),
                         ("x-mq-protocol", "v2"))
        self.outbox: queue.Queue[rpc.TelemetryCommand | None] = queue.Queue()
        self.checks: queue.Queue[tuple[int, rpc.RecoverOrphanedTransactionCommand]] = queue.Queue()
        self.settled = threading.Event()
        settings = pb.Settings(client_type=pb.ClientType.PRODUCER,
                               publishing=pb.Publishing(topics=[pb.Resource(name=topic)]))
        self.outbox.put(rpc.TelemetryCommand(settings=settings))
        self.stream = self.stub.Telemetry(iter(self.outbox.get, None), metadata=self.metadata)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        assert self.settled.wait(30), "the server did not answer the producer's settings"

    def _read(self) -> None:
        try:
            for command in self.stream:
                if command.HasField("settings"):
                    self.settled.set()
                elif command.HasField("recover_orphaned_transaction_command"):
                    self.checks.put((epoch_ms(), command.recover_orphaned_transaction_command))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise

    def send_half(self, name: str, recovery_ms: int | None = None) -> tuple[str, str]:
        """Send a half message; its (message id, transaction id)."""
        message = pb.Message(body=name.encode(), user_properties={"name": name})
        message.topic.name = self.topic
        message.system_properties.message_id = uuid.uuid4().hex.upper()
        message.system_properties.message_type = pb.MessageType.TRANSACTION
        if recovery_ms is not None:
            message.system_properties.orphaned_transaction_recovery_duration.FromMilliseconds(recovery_ms)
        response = self.stub.SendMessage(rpc.SendMessageRequest(messages=[message]), metadata=self.metadata,
                                         timeout=30)
        assert response.status.code == pb.Code.OK, response.status
        (entry,) = response.entries
        return entry.message_id, entry.transaction_id

    def end(self, message_id: str, transaction_id: str, commit: bool) -> None:
        request = rpc.EndTransactionRequest(
            topic=pb.Resource(name=self.topic), message_id=message_id, transaction_id=transaction_id,
            resolution=pb.TransactionResolution.COMMIT if commit else pb.TransactionResolution.ROLLBACK,
            source=pb.TransactionSource.SOURCE_SERVER_CHECK)
        response = self.stub.EndTransaction(request, metadata=self.metadata, timeout=30)
        assert response.status.code == pb.Code.OK, response.status

    def close(self) -> None:
        self.outbox.put(None)
        self.stream.cancel()
        self.reader.join(10)
        self.channel.close()


@pytest.fixture
def producer(server: ServerProcess, name: str) -> Iterator[RawProducer]:
    server.cli("topic", "create", f"{name}-t", "--type", "transaction", "--queues", "2")
    raw = RawProducer(server.address, f"{name}-t")
    yield raw
    raw.close()


def test_first_checks_follow_the_default_and_the_messages_own_recovery_duration(
        server: ServerProcess, producer: RawProducer, name: str) -> None:
    topic, group = producer.topic, f"{name}-g"
    server.cli("group", "create", group)
    before = epoch_ms()
    plain = producer.send_half("plain")
    own = producer.send_half("own", recovery_ms=OWN_RECOVERY_MS)

    # Nobody resolves them: each is checked once its first check falls due, the one with its own
    # recovery duration after that (2 s), the other after the server's default (6 s).
    asked: dict[str, int] = {}
    while len(asked) < 2:
        at, command = producer.checks.get(timeout=DEFAULT_FIRST_CHECK_MS / 1000 + 30)
        (asked_name,) = [n for n, sent in (("plain", plain), ("own", own)) if sent[1] == command.transaction_id]
        assert asked_name not in asked, f"{asked_name} checked twice: {at - asked[asked_name]} ms apart"
        assert command.message.user_properties["name"] == asked_name
        asked[asked_name] = at
    assert OWN_RECOVERY_MS <= asked["own"] - before <= OWN_RECOVERY_MS + LATE_MS, asked["own"] - before
    assert DEFAULT_FIRST_CHECK_MS <= asked["plain"] - before <= DEFAULT_FIRST_CHECK_MS + LATE_MS, \
        asked["plain"] - before

    # Unanswered, each is checked again one default interval (30 s) after its check: the topic shows
    # the earlier of the two, the one of "own".
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_transactions"] == 2
    next_check = datetime.datetime.fromisoformat(described["next_transaction_check"]).timestamp() * 1000
    assert 0 <= asked["own"] + DEFAULT_CHECK_INTERVAL_MS - next_check <= LATE_MS, next_check - asked["own"]

    # The producer answers as a checker does: "own" committed, "plain" rolled back.
    producer.end(*own, commit=True)
    producer.end(*plain, commit=False)
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "1", "--ack")
    assert [m["message_id"] for m in consumed["received"]] == [own[0]]
    assert server.cli_json("group", "describe", group)["topics"][0]["ready"] == 0
