"""The shared client scenarios (tests/clients/SCENARIOS.md) with rocketmq-python-client 5.1.2.

    runner.py SCENARIO --endpoint HOST:PORT [--tls default|on|off] [options]

Runs one scenario with the client's public API, as its users use it, and prints the result as the
last stdout line (one JSON object). tests/clientmatrix.py runs it; the tests assert on what it prints.
With ``--tls on`` the client verifies the server's certificate against grpc's roots, which the test
points at its own certificate with GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import describe, emit, error, subscription
from rocketmq import (
    ClientConfiguration,
    ConsumeResult,
    Credentials,
    Message,
    MessageListener,
    Producer,
    PushConsumer,
    SimpleConsumer,
    TransactionChecker,
)
from rocketmq.grpc_protocol import MessageType, TransactionResolution

LANGUAGE = "python"
DAY_MS = 86_400_000
DECISIONS = {"commit": TransactionResolution.COMMIT, "rollback": TransactionResolution.ROLLBACK,
             "unknown": TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED}
LONG_POLL_S = 5  # a SimpleConsumer's await duration: how long one receive waits for messages
RECEIVE_ERROR_PAUSE_S = 0.2  # after a failed receive, so a refusing server is not asked in a busy loop


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Connection:
    """The common options: where the server is, credentials, timeout and TLS, for every client made."""

    config: ClientConfiguration
    tls: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connection:
        credentials = Credentials(args.access_key, args.secret_key)
        # Whole seconds: the client passes the timeout where only an integer is accepted.
        timeout_s = max(1, round(args.request_timeout_ms / 1000))
        config = ClientConfiguration(args.endpoint, credentials, request_timeout=timeout_s)
        # The Python client's own default is plaintext: "default" and "off" are the same here.
        return cls(config, args.tls == "on")

    def producer(self, topic: str, checker: TransactionChecker | None = None) -> Producer:
        producer = Producer(self.config, (topic,), checker, tls_enable=self.tls)
        producer.startup()
        return producer


def standard_message(topic: str, index: int, prefix: str = "m", size: int = 100) -> Message:
    """Message ``index`` as SCENARIOS.md describes it (body, tag, keys, index and origin)."""
    message = Message()
    message.topic = topic
    head = f"{prefix}-{index}:".encode()
    message.body = (head + bytes(range(256)) * (size // 256 + 1))[:max(size, len(head))]
    message.tag = f"tag-{index % 3}"
    message.keys = f"key-{index}"  # the setter adds a key
    message.keys = f"order-{index // 10}"
    message.add_property("index", str(index))
    message.add_property("origin", LANGUAGE)
    return message


def sent_entry(index: int, receipt: Any, mode: str) -> dict[str, Any]:
    return {"index": index, "message_id": receipt.message_id, "mode": mode, "offset": receipt.offset}


def received(message: Any, at_ms: int) -> dict[str, Any]:
    """A received message in the contract's shape, with the extra fields this client exposes."""
    fields = describe(message)
    return {
        "message_id": fields["message_id"],
        "topic": fields["topic"],
        "body": fields["body"],
        "tag": fields["tag"],
        "keys": fields["keys"],
        "properties": fields["properties"],
        "delivery_attempt": fields["delivery_attempt"],
        "message_group": fields["message_group"],
        # 5.1.2 reads an absent delivery timestamp as 0 (it tests the field's truth, which a message always has).
        "delivery_timestamp_ms": message.delivery_timestamp or None,
        "born_timestamp_ms": fields["born_timestamp"],
        "born_host": fields["born_host"],
        "at_ms": at_ms,
        "corrupted": fields["corrupted"],
        "message_type": MessageType.Name(fields["message_type"]),
        "receipt_handle": fields["receipt_handle"],
    }


def attempt(call: Callable[[], object]) -> dict[str, Any] | None:
    """Run ``call``: None when it succeeded, else the error."""
    try:
        call()
    except Exception as exc:
        return error(exc)
    return None


# -- producers -------------------------------------------------------------------------------------------------

def produce(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    producer = conn.producer(args.topic)
    sent: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    pending = []
    for index in range(args.count):
        message = standard_message(args.topic, index, args.prefix, args.size)
        try:
            if args.mode == "async" or (args.mode == "mixed" and index % 2 == 1):
                pending.append((index, producer.send_async(message)))
            else:
                sent.append(sent_entry(index, producer.send(message), "sync"))
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    for index, future in pending:
        try:
            sent.append(sent_entry(index, future.result(timeout=60), "async"))
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    producer.shutdown()
    return {"sent": sorted(sent, key=lambda s: s["index"]), "errors": sorted(errors, key=lambda e: e["index"])}


def produce_fifo(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    producer = conn.producer(args.topic)
    sent: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index in range(args.count):
        message = standard_message(args.topic, index, args.prefix)
        group, seq = f"mg-{index % args.groups}", index // args.groups
        message.message_group = group
        message.add_property("seq", str(seq))
        try:
            sent.append({**sent_entry(index, producer.send(message), "sync"), "message_group": group, "seq": seq})
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    producer.shutdown()
    return {"sent": sent, "errors": errors}


def produce_priority(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    """For each spec P:N in order, N messages of priority P (body p<P>-<i>, tag tag-<P>)."""
    producer = conn.producer(args.topic)
    sent: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    index = 0
    for spec in args.specs.split(","):
        priority, count = (int(x) for x in spec.split(":"))
        for i in range(count):
            message = Message()
            message.topic = args.topic
            message.body = f"p{priority}-{i}".encode()
            message.tag = f"tag-{priority}"
            message.add_property("origin", LANGUAGE)
            message.priority = priority
            try:
                sent.append({**sent_entry(index, producer.send(message), "sync"), "priority": priority})
            except Exception as exc:
                errors.append({"index": index, **error(exc)})
            index += 1
    producer.shutdown()
    return {"sent": sent, "errors": errors}


def produce_delay(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    producer = conn.producer(args.topic)
    now = now_ms()
    plan = [("plus3", now + 3000), ("plus1", now + 1000), ("past", now - 5000), ("too-far", now + 41 * DAY_MS),
            ("recalled", now + 5000)]
    sent: dict[str, Any] = {}
    errors: dict[str, Any] = {"too-far": None, "recall-again": None}
    result: dict[str, Any] = {"sent": sent, "errors": errors, "recall": None}
    for index, (name, due_ms) in enumerate(plan):
        message = standard_message(args.topic, index)
        message.add_property("name", name)
        message.delivery_timestamp = due_ms
        try:
            receipt = producer.send(message)
        except Exception as exc:
            if name != "too-far":
                raise
            errors[name] = error(exc)
            continue
        sent[name] = {"due_ms": due_ms, "message_id": receipt.message_id, "recall_handle": receipt.recall_handle}
    handle = sent["recalled"]["recall_handle"]
    try:
        result["recall"] = producer.recall_message(args.topic, handle)
    except Exception as exc:
        errors["recall"] = error(exc)
    errors["recall-again"] = attempt(lambda: producer.recall_message(args.topic, handle))
    errors["recall-garbage"] = attempt(lambda: producer.recall_message(args.topic, "not-a-handle"))
    producer.shutdown()
    return result


class Checker(TransactionChecker):
    """Answers the server's checks from the message's ``decide`` property and records who was asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked: list[dict[str, Any]] = []

    def check(self, message: Message) -> int:
        with self.lock:
            self.asked.append({"name": message.properties.get("name"), "at_ms": now_ms()})
        return DECISIONS[message.properties["decide"]]


def produce_transaction(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    checker = Checker()
    producer = conn.producer(args.topic, checker)
    plan = [("committed", "rollback", "commit"), ("rolled-back", "commit", "rollback"),
            ("checker-commits", "commit", None), ("checker-rolls-back", "rollback", None),
            ("checker-unsure", "unknown", None)]
    sent: dict[str, str] = {}
    sent_ms: dict[str, int] = {}  # when each half message's send returned (an extra field: SCENARIOS.md)
    errors: dict[str, Any] = {"commit-again": None}
    for index, (name, decide, action) in enumerate(plan):
        message = standard_message(args.topic, index)
        message.add_property("name", name)
        message.add_property("decide", decide)
        transaction = producer.begin_transaction()
        sent[name] = producer.send(message, transaction).message_id
        sent_ms[name] = now_ms()
        if action == "commit":
            transaction.commit()
            errors["commit-again"] = attempt(transaction.commit)
        elif action == "rollback":
            transaction.rollback()
    time.sleep(args.linger)  # online, answering the server's checks
    with checker.lock:
        asked = list(checker.asked)
    producer.shutdown()
    return {"sent": sent, "sent_ms": sent_ms, "asked": asked, "errors": errors}


# -- consumers -------------------------------------------------------------------------------------------------

def simple_consume(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    consumer = SimpleConsumer(conn.config, args.group, {args.topic: subscription(args.tag or "*", args.sql)},
                              await_duration=LONG_POLL_S, tls_enable=conn.tls)
    consumer.startup()
    messages: list[dict[str, Any]] = []
    ack_errors: list[dict[str, Any]] = []
    receive_errors: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.max_wait_s
    while len(messages) < args.expect and time.monotonic() < deadline:
        try:
            batch = consumer.receive(min(args.batch, args.expect - len(messages)), args.invisible_s)
        except Exception as exc:
            receive_errors.append(error(exc))
            time.sleep(RECEIVE_ERROR_PAUSE_S)
            continue
        at_ms = now_ms()
        for message in batch:
            entry = received(message, at_ms)
            messages.append(entry)
            if args.change_invisible_s is not None:
                old_handle = message.receipt_handle
                try:
                    consumer.change_invisible_duration(message, args.change_invisible_s)  # sets the new handle
                except Exception as exc:
                    ack_errors.append({"message_id": message.message_id, "op": "change-invisible-duration",
                                       **error(exc)})
                    continue
                new_handle = message.receipt_handle
                message.receipt_handle = old_handle
                entry["old_handle_ack"] = attempt(lambda m=message: consumer.ack(m))
                message.receipt_handle = new_handle
            if args.ack:
                failed = attempt(lambda m=message: consumer.ack(m))
                if failed is not None:
                    ack_errors.append({"message_id": message.message_id, **failed})
    consumer.shutdown()
    return {"received": messages, "ack_errors": ack_errors, "receive_errors": receive_errors}


class Listener(MessageListener):
    """Records every call and answers by ``--fail``; sets ``reached`` after ``expect`` calls."""

    def __init__(self, fail: str, expect: int) -> None:
        self.fail = fail
        self.expect = expect
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.reached = threading.Event()

    def fails(self, message: Message, first: bool) -> bool:
        if self.fail == "always":
            return True
        if self.fail == "first":
            return first
        if self.fail.startswith("index-mod-"):
            index = message.properties.get("index")
            return first and index is not None and int(index) % int(self.fail.removeprefix("index-mod-")) == 0
        return False

    def consume(self, message: Message) -> ConsumeResult:
        at_ms = now_ms()
        with self.lock:
            first = message.message_id not in self.seen
            self.seen.add(message.message_id)
            fail = self.fails(message, first)
            fields = received(message, at_ms)
            self.events.append({
                "message_id": message.message_id, "attempt": message.delivery_attempt,
                "message_group": message.message_group, "properties": dict(message.properties),
                "result": "fail" if fail else "ok", "at_ms": at_ms,
                **{k: fields[k] for k in ("topic", "body", "tag", "keys", "corrupted", "message_type")},
            })
            if len(self.events) >= self.expect:
                self.reached.set()
        return ConsumeResult.FAILURE if fail else ConsumeResult.SUCCESS


def push_consume(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    if not (args.fail in ("never", "always", "first") or
            (args.fail.startswith("index-mod-") and args.fail.removeprefix("index-mod-").isdigit())):
        raise SystemExit(f"--fail {args.fail}: never, always, first or index-mod-K")
    listener = Listener(args.fail, args.expect)
    consumer = PushConsumer(conn.config, args.group, listener, {args.topic: subscription(args.tag or "*", args.sql)},
                            tls_enable=conn.tls)
    consumer.startup()
    listener.reached.wait(args.max_wait_s)
    time.sleep(args.linger_s)  # extra deliveries would show up now
    with listener.lock:
        events = list(listener.events)
    consumer.shutdown()
    return {"events": events}


# -- command line ----------------------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[argparse.Namespace, Connection], dict[str, Any]]] = {
    "produce": produce,
    "produce-fifo": produce_fifo,
    "produce-priority": produce_priority,
    "produce-delay": produce_delay,
    "produce-transaction": produce_transaction,
    "simple-consume": simple_consume,
    "push-consume": push_consume,
}


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", required=True, help="HOST:PORT")
    common.add_argument("--tls", choices=("default", "on", "off"), default="default")
    common.add_argument("--access-key", default="")
    common.add_argument("--secret-key", default="")
    common.add_argument("--request-timeout-ms", type=int, default=10000)
    common.add_argument("--topic", required=True)

    main = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scenarios = main.add_subparsers(dest="scenario", required=True)
    sub = scenarios.add_parser("produce", parents=[common])
    sub.add_argument("--count", type=int, required=True)
    sub.add_argument("--mode", choices=("sync", "async", "mixed"), default="mixed")
    sub.add_argument("--prefix", default="m")
    sub.add_argument("--size", type=int, default=100)
    sub = scenarios.add_parser("produce-fifo", parents=[common])
    sub.add_argument("--count", type=int, required=True)
    sub.add_argument("--groups", type=int, required=True)
    sub.add_argument("--prefix", default="m")
    sub = scenarios.add_parser("produce-priority", parents=[common])
    sub.add_argument("--specs", required=True, help="PRIORITY:COUNT[,PRIORITY:COUNT...]")
    scenarios.add_parser("produce-delay", parents=[common])
    sub = scenarios.add_parser("produce-transaction", parents=[common])
    sub.add_argument("--linger", type=float, default=15)
    for name in ("simple-consume", "push-consume"):
        sub = scenarios.add_parser(name, parents=[common])
        sub.add_argument("--group", required=True)
        sub.add_argument("--expect", type=int, required=True)
        filters = sub.add_mutually_exclusive_group()
        filters.add_argument("--tag")
        filters.add_argument("--sql")
    sub = scenarios.choices["simple-consume"]
    sub.add_argument("--ack", action="store_true")
    sub.add_argument("--invisible-s", type=int, default=20)
    sub.add_argument("--max-wait-s", type=float, default=60)
    sub.add_argument("--batch", type=int, default=32)
    sub.add_argument("--change-invisible-s", type=int)
    sub = scenarios.choices["push-consume"]
    sub.add_argument("--fail", default="never")
    sub.add_argument("--max-wait-s", type=float, default=120)
    sub.add_argument("--linger-s", type=float, default=2)
    return main


def main() -> None:
    args = parser().parse_args()
    emit(SCENARIOS[args.scenario](args, Connection.from_args(args)))


if __name__ == "__main__":
    main()
