"""Apache RocketMQ as the behaviour oracle for bad input: the cases of tests/test_e2e_bad_input.py
sent over raw gRPC to rmqproxy and to Apache RocketMQ, one after the other, and the protocol codes
each answered printed side by side.

    .venv/bin/python -m benchmarks.oracle                    # both servers, every case
    .venv/bin/python -m benchmarks.oracle --only receive     # the cases whose name holds "receive"

Each server is started on loopback with its data in a temporary directory and stopped at the end.
Both are treated alike: the same topics (a normal one, a FIFO one) and consumer group are created
first, and the client opens Telemetry with its Settings before anything else, as every real client
does (Apache RocketMQ answers ReceiveMessage only for a client whose Settings it holds). The
"rmqproxy test" column is the code tests/test_e2e_bad_input.py asserts for rmqproxy. Differences
kept on purpose, and why, are in docs/rocketmq-differences.md. Writes
``benchmarks/results/oracle-bad-input.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration

from benchmarks.harness import Server
from benchmarks.rocketmq_peer import ApacheRocketMQ, missing, version
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as admin
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as admin_grpc

RESULTS = Path(__file__).resolve().parent / "results"
Code = pb.Code
MiB = 1024 * 1024
TIMEOUT = 30
TOPIC, FIFO_TOPIC, OTHER_TOPIC, GROUP = "oracle-t", "oracle-fifo", "oracle-other", "oracle-g"
CLIENT_ID = f"oracle-{os.getpid()}"
METADATA = (("x-mq-client-id", CLIENT_ID), ("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"),
            ("x-mq-client-version", "5.0.7"))
NO_CLIENT_ID = (("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"))


def name(code: int) -> str:
    try:
        return str(Code.Name(code))
    except ValueError:
        return str(code)


_serial = iter(range(1, 1 << 40))


def message(topic: str = TOPIC, body: bytes = b"payload", *, tag: str | None = "tag-a",
            keys: tuple[str, ...] = ("k1",), properties: dict[str, str] | None = None, msg_id: str | None = None,
            message_type: int = pb.MessageType.NORMAL, message_group: str | None = None) -> pb.Message:
    """A message as the bad-input test builds it (a client-style id, born host and time)."""
    sp = pb.SystemProperties(keys=list(keys), message_id=f"01{os.getpid():08X}{next(_serial):024X}"
                             if msg_id is None else msg_id, body_encoding=pb.Encoding.IDENTITY, born_host="oracle")
    sp.message_type = message_type  # type: ignore[assignment]
    sp.born_timestamp.GetCurrentTime()
    if tag is not None:
        sp.tag = tag
    if message_group is not None:
        sp.message_group = message_group
    return pb.Message(topic=pb.Resource(name=topic), body=body, user_properties=properties or {},
                      system_properties=sp)


@dataclass
class Conn:
    stub: rpc_grpc.MessagingServiceStub


Case = Callable[[Conn], str]
"""Runs one bad input against a server; returns what it answered (a Code name, or a gRPC status)."""


def _send(*messages: pb.Message, metadata: tuple[tuple[str, str], ...] = METADATA) -> Case:
    def run(conn: Conn) -> str:
        response = conn.stub.SendMessage(rpc.SendMessageRequest(messages=messages), metadata=metadata,
                                         timeout=TIMEOUT)
        return name(response.status.code)

    return run


def _receive(*, invisible_s: float | None = 30, group: str = GROUP, topic: str = TOPIC,
             metadata: tuple[tuple[str, str], ...] = METADATA) -> Case:
    def run(conn: Conn) -> str:
        request = rpc.ReceiveMessageRequest(
            group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
            filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"), batch_size=16,
            auto_renew=False)
        request.long_polling_timeout.FromSeconds(5)
        if invisible_s is not None:
            request.invisible_duration.FromMilliseconds(int(invisible_s * 1000))
        codes = [name(frame.status.code) for frame in conn.stub.ReceiveMessage(request, metadata=metadata,
                                                                               timeout=TIMEOUT)
                 if frame.WhichOneof("content") == "status"]
        return ",".join(codes) or "(no status)"

    return run


def _unary(rpc_name: str, request: object, metadata: tuple[tuple[str, str], ...] = METADATA) -> Case:
    def run(conn: Conn) -> str:
        response = getattr(conn.stub, rpc_name)(request, metadata=metadata, timeout=TIMEOUT)
        return name(response.status.code)

    return run


def _ack(handle: str) -> Case:
    return _unary("AckMessage", rpc.AckMessageRequest(
        group=pb.Resource(name=GROUP), topic=pb.Resource(name=TOPIC),
        entries=[rpc.AckMessageEntry(message_id="01ABC", receipt_handle=handle)]))


def _with(field: str, value: object) -> pb.Message:
    built = message()
    if field == "body":
        built.body = value  # type: ignore[assignment]
    else:
        setattr(built.system_properties, field, value)
    return built


def _batch_with_one_bad(breakage: str) -> Case:
    messages = [message(body=f"good-{i}".encode()) for i in range(5)]
    bad = messages[2]
    if breakage == "empty-body":
        bad.body = b""
    elif breakage == "pipe-tag":
        bad.system_properties.tag = "x|y"
    elif breakage == "reserved-key":
        bad.user_properties["UNIQ_KEY"] = "mine"
    else:
        bad.system_properties.message_type = pb.MessageType.FIFO
    return _send(*messages)


def cases() -> list[tuple[str, str, Case]]:
    """(case, the code rmqproxy's test asserts, how to run it), in the test module's order."""
    t, g = pb.Resource(name=TOPIC), pb.Resource(name=GROUP)
    table: list[tuple[str, str, Case]] = [
        ("send: no messages", "MESSAGE_CORRUPTED", _send()),
        ("send: two topics in one request", "MESSAGE_CORRUPTED", _send(message(), message(OTHER_TOPIC))),
        ("send: empty body", "MESSAGE_BODY_EMPTY", _send(_with("body", b""))),
        ("send: body 4 MiB + 1", "MESSAGE_BODY_TOO_LARGE", _send(message(body=b"x" * (4 * MiB + 1)))),
        ("send: body exactly 4 MiB", "OK", _send(message(body=b"x" * (4 * MiB)))),
        ("send: 129 user properties", "MESSAGE_PROPERTIES_TOO_LARGE",
         _send(message(properties={f"p{i}": "v" for i in range(129)}))),
        ("send: 128 user properties", "OK", _send(message(properties={f"p{i}": "v" for i in range(128)}))),
        ("send: user properties 16 KiB + 1", "MESSAGE_PROPERTIES_TOO_LARGE",
         _send(message(properties={"p1": "v" * 8190, "p2": "v" * 8191}))),
        ("send: user properties exactly 16 KiB", "OK", _send(message(properties={"p1": "v" * 8190, "p2": "v" * 8190}))),
    ]
    for key, label in (("UNIQ_KEY", "UNIQ_KEY"), ("KEYS", "KEYS"), ("TAGS", "TAGS"), ("DELAY", "DELAY"),
                       ("a\x01b", "control char"), ("tab\tkey", "tab"), ("del\x7f", "DEL"), ("", "empty")):
        table.append((f"send: property key {label}", "ILLEGAL_MESSAGE_PROPERTY_KEY",
                      _send(message(properties={"fine": "yes", key: "value"}))))
    table.append(("send: tag empty", "OK", _send(message(tag=""))))  # no tag, as the reference takes it
    for tag, label in (("   ", "blank"), ("a|b", "a|b"), ("|", "|"), ("a\x01b", "control char"),
                       ("line\nbreak", "newline")):
        table.append((f"send: tag {label}", "ILLEGAL_MESSAGE_TAG", _send(message(tag=tag))))
    table.append(("send: key empty", "OK", _send(message(keys=("",)))))  # no such key, as the reference takes it
    for keys, label in ((("   ",), "blank"), (("good", " "), "good and blank"), (("a\x02b",), "control char")):
        table.append((f"send: key {label}", "ILLEGAL_MESSAGE_KEY", _send(message(keys=keys))))
    for msg_id, label in (("", "empty"), ("   ", "blank")):
        table.append((f"send: message id {label}", "ILLEGAL_MESSAGE_ID", _send(message(msg_id=msg_id))))
    for message_type, label in ((pb.MessageType.NORMAL, "NORMAL"), (pb.MessageType.FIFO, "FIFO"),
                                (pb.MessageType.MESSAGE_TYPE_UNSPECIFIED, "unset")):
        table.append((f"send: message group of 65 bytes, type {label}", "ILLEGAL_MESSAGE_GROUP",
                      _send(message(message_type=message_type, message_group="g" * 65))))
    table.append(("send: message group of 66 UTF-8 bytes (33 chars)", "ILLEGAL_MESSAGE_GROUP",
                  _send(message(message_type=pb.MessageType.FIFO, message_group="é" * 33))))
    for message_type, label in ((pb.MessageType.FIFO, "FIFO"), (pb.MessageType.DELAY, "DELAY"),
                                (pb.MessageType.TRANSACTION, "TRANSACTION")):
        table.append((f"send: {label} message to a NORMAL topic", "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
                      _send(message(message_type=message_type))))
    table += [
        ("send: FIFO message with a group to a NORMAL topic", "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
         _send(message(message_type=pb.MessageType.FIFO, message_group="order-1"))),
        ("send: unknown topic", "TOPIC_NOT_FOUND", _send(message("oracle-missing"))),
        ("send: illegal topic name a!", "ILLEGAL_TOPIC", _send(message("a!"))),
    ]
    for breakage, expected in (("empty-body", "MESSAGE_BODY_EMPTY"), ("pipe-tag", "ILLEGAL_MESSAGE_TAG"),
                               ("reserved-key", "ILLEGAL_MESSAGE_PROPERTY_KEY"),
                               ("fifo-type", "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE")):
        table.append((f"send: batch of 5, the third {breakage}", expected, _batch_with_one_bad(breakage)))
    for message_type, label in ((pb.MessageType.FIFO, "FIFO"), (pb.MessageType.NORMAL, "NORMAL"),
                                (pb.MessageType.MESSAGE_TYPE_UNSPECIFIED, "unset")):
        table.append((f"send: to a FIFO topic without a message group, type {label}", "ILLEGAL_MESSAGE_GROUP",
                      _send(message(FIFO_TOPIC, message_type=message_type))))
    table.append(("send: to a FIFO topic with a message group", "OK",
                  _send(message(FIFO_TOPIC, message_type=pb.MessageType.FIFO, message_group="order-1"))))
    table.append(("send: no x-mq-client-id", "CLIENT_ID_REQUIRED", _send(message(), metadata=NO_CLIENT_ID)))
    unary = {
        "QueryRoute": rpc.QueryRouteRequest(topic=t),
        "QueryAssignment": rpc.QueryAssignmentRequest(topic=t, group=g),
        "Heartbeat": rpc.HeartbeatRequest(group=g, client_type=pb.ClientType.SIMPLE_CONSUMER),
        "AckMessage": rpc.AckMessageRequest(group=g, topic=t, entries=[rpc.AckMessageEntry(
            message_id="01", receipt_handle="x")]),
        "ChangeInvisibleDuration": rpc.ChangeInvisibleDurationRequest(
            group=g, topic=t, receipt_handle="x", invisible_duration=Duration(seconds=30)),
        "NotifyClientTermination": rpc.NotifyClientTerminationRequest(group=g),
    }
    for rpc_name, request in unary.items():
        for header, label in ((None, "absent"), ("", "empty")):
            metadata = NO_CLIENT_ID if header is None else (*NO_CLIENT_ID, ("x-mq-client-id", header))
            table.append((f"{rpc_name}: x-mq-client-id {label}", "CLIENT_ID_REQUIRED",
                          _unary(rpc_name, request, metadata)))
    table.append(("receive: no x-mq-client-id", "CLIENT_ID_REQUIRED", _receive(metadata=NO_CLIENT_ID)))
    for seconds, label in ((1, "1 s"), (9.999, "9.999 s"), (13 * 3600, "13 h"), (12 * 3600 + 1, "12 h + 1 s"),
                           (0, "0"), (None, "unset, no auto_renew")):
        table.append((f"receive: invisible duration {label}", "ILLEGAL_INVISIBLE_TIME",
                      _receive(invisible_s=seconds)))
    table += [
        ("receive: unknown group", "CONSUMER_GROUP_NOT_FOUND", _receive(group="oracle-nogroup")),
        ("receive: unknown topic", "TOPIC_NOT_FOUND", _receive(topic="oracle-notopic")),
    ]
    for handle, label in (("garbage", "garbage"), ("", "empty"), ("!!!***$$$", "not base64")):
        table.append((f"ack: receipt handle {label}", "INVALID_RECEIPT_HANDLE", _ack(handle)))
        table.append((f"ChangeInvisibleDuration: receipt handle {label}", "INVALID_RECEIPT_HANDLE",
                      _unary("ChangeInvisibleDuration", rpc.ChangeInvisibleDurationRequest(
                          group=g, topic=t, receipt_handle=handle, invisible_duration=Duration(seconds=30),
                          message_id="01ABC"))))
    table += [
        ("QueryAssignment: unknown group", "CONSUMER_GROUP_NOT_FOUND", _unary("QueryAssignment",
         rpc.QueryAssignmentRequest(topic=t, group=pb.Resource(name="oracle-nogroup")))),
        ("Heartbeat: unknown group (simple consumer)", "CONSUMER_GROUP_NOT_FOUND", _unary("Heartbeat",
         rpc.HeartbeatRequest(group=pb.Resource(name="oracle-nogroup"), client_type=pb.ClientType.SIMPLE_CONSUMER))),
        ("Heartbeat: unknown group (push consumer)", "CONSUMER_GROUP_NOT_FOUND", _unary("Heartbeat",
         rpc.HeartbeatRequest(group=pb.Resource(name="oracle-nogroup"), client_type=pb.ClientType.PUSH_CONSUMER))),
    ]
    for topic_name, label in (("a!", "a!"), ("ab", "2 chars"), ("t" * 65, "65 chars"), ("bad name", "space"),
                              ("tab\tname", "tab")):
        table.append((f"QueryRoute: topic name {label}", "ILLEGAL_TOPIC",
                      _unary("QueryRoute", rpc.QueryRouteRequest(topic=pb.Resource(name=topic_name)))))
    return table


def _settings(address: str) -> pb.Settings:
    host, port = address.rsplit(":", 1)
    settings = pb.Settings(client_type=pb.ClientType.SIMPLE_CONSUMER, request_timeout=Duration(seconds=3))
    settings.access_point.scheme = pb.AddressScheme.IPv4
    settings.access_point.addresses.add(host=host, port=int(port))
    settings.subscription.group.name = GROUP
    entry = settings.subscription.subscriptions.add()
    entry.topic.name = TOPIC
    entry.expression.type = pb.FilterType.TAG
    entry.expression.expression = "*"
    settings.user_agent.language = pb.Language.PYTHON
    settings.user_agent.version = "5.0.7"
    return settings


def _against(address: str, table: Sequence[tuple[str, str, Case]]) -> list[str]:
    """Open Telemetry with Settings (kept open), then run every case; what each answered."""
    outbox: queue.Queue[rpc.TelemetryCommand | None] = queue.Queue()

    def commands() -> Iterator[rpc.TelemetryCommand]:
        while (command := outbox.get()) is not None:
            yield command

    answers = []
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * MiB),
                                                 ("grpc.max_receive_message_length", 64 * MiB)]) as channel:
        stub = rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]
        outbox.put(rpc.TelemetryCommand(settings=_settings(address)))
        telemetry = stub.Telemetry(commands(), metadata=METADATA)
        first = next(telemetry)
        if first.status.code != Code.OK:
            raise RuntimeError(f"{address} refused the Settings: {first.status}")
        conn = Conn(stub)
        for label, _, run in table:
            try:
                answers.append(run(conn))
            except grpc.RpcError as exc:
                answers.append(f"gRPC {exc.code().name}")
            print(f"  {label}: {answers[-1]}", file=sys.stderr)
        outbox.put(None)
        telemetry.cancel()
    return answers


def _rmqproxy(workdir: Path) -> tuple[str, Callable[[], None]]:
    data = workdir / "rmqproxy"
    data.mkdir(parents=True)
    server = Server(data, ("--flush", "async")).start()
    with grpc.insecure_channel(server.address) as channel:
        stub = admin_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
        for topic, kind in ((TOPIC, admin.NORMAL), (OTHER_TOPIC, admin.NORMAL), (FIFO_TOPIC, admin.FIFO)):
            stub.CreateTopic(admin.CreateTopicRequest(name=topic, type=kind, queues=2), timeout=TIMEOUT)
        stub.CreateGroup(admin.CreateGroupRequest(name=GROUP), timeout=TIMEOUT)
    return server.address, server.stop


def _apache(workdir: Path) -> tuple[str, Callable[[], None]]:
    from benchmarks.rocketmq_admin import create_group, create_topic

    server = ApacheRocketMQ(workdir / "rocketmq").start()
    for topic, kind in ((TOPIC, "NORMAL"), (OTHER_TOPIC, "NORMAL"), (FIFO_TOPIC, "FIFO")):
        create_topic(server.broker_address, topic, 2, kind)
    create_group(server.broker_address, GROUP)
    time.sleep(1)  # the broker registers new topics with the name server, which the proxy's route reads
    return server.address, server.stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oracle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run the cases whose name contains this text")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where to write the table (default benchmarks/results)")
    args = parser.parse_args(argv)
    why = missing()
    if why:
        print(f"Apache RocketMQ cannot run here: {why}", file=sys.stderr)
        return 2
    table = [c for c in cases() if not args.only or args.only in c[0]]
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="rmq-oracle-") as scratch:
        for label, start in (("rmqproxy", _rmqproxy), (f"Apache RocketMQ {version()}", _apache)):
            print(f"{label}:", file=sys.stderr)
            address, stop = start(Path(scratch))
            try:
                results[label] = _against(address, table)
            finally:
                stop()
    ours, theirs = results.values()
    lines = ["# Bad input: rmqproxy and Apache RocketMQ side by side", "",
             "`python -m benchmarks.oracle`: each case of tests/test_e2e_bad_input.py over raw gRPC; the code each "
             "server answered (the top-level status). Deliberate differences: docs/rocketmq-differences.md.", "",
             f"| case | rmqproxy test asserts | rmqproxy | Apache RocketMQ {version()} | same |",
             "| --- | --- | --- | --- | :---: |"]
    same = 0
    for (label, expected, _), mine, reference in zip(table, ours, theirs, strict=True):
        same += mine == reference
        shown = label.replace("|", "\\|")
        lines.append(f"| {shown} | {expected} | {mine} | {reference} | {'yes' if mine == reference else '**no**'} |")
    lines += ["", f"{same} of {len(table)} cases answered alike."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.only:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "oracle-bad-input.md").write_text(text)
        (args.out / "oracle-bad-input.json").write_text(json.dumps(
            [{"case": label, "rmqproxy_test": expected, "rmqproxy": mine, "rocketmq": reference}
             for (label, expected, _), mine, reference in zip(table, ours, theirs, strict=True)], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
