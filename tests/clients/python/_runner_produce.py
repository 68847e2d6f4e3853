"""The Python client runner's producer scenarios (runner.py): produce, produce-fifo,
produce-priority, produce-delay, produce-transaction."""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from _common import error
from _runner_common import DAY_MS, LANGUAGE, Connection, attempt, now_ms, sent_entry, standard_message
from rocketmq import (
    Message,
    TransactionChecker,
)
from rocketmq.grpc_protocol import TransactionResolution

DECISIONS = {"commit": TransactionResolution.COMMIT, "rollback": TransactionResolution.ROLLBACK,
             "unknown": TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED}


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
