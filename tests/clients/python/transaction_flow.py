"""Transactional messages with the Python client.

Sends half messages and resolves them in every way: commit, rollback, left to the checker (which
commits, rolls back, or cannot tell, per the message's "decide" property), and a second commit of
a committed transaction (must fail). Keeps the producer (and its checker) online for --listen
seconds while a SimpleConsumer receives, then prints what arrived, what the checker was asked and
when (epoch ms; each half message's send is bracketed by ``sent`` [before, after])."""

from __future__ import annotations

import argparse
import threading
import time

from _common import config, emit, error
from rocketmq import FilterExpression, Message, Producer, SimpleConsumer, TransactionChecker
from rocketmq.grpc_protocol import TransactionResolution

DECISIONS = {"commit": TransactionResolution.COMMIT, "rollback": TransactionResolution.ROLLBACK,
             "unknown": TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED}


class Checker(TransactionChecker):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked: list[tuple[str, int]] = []

    def check(self, message: Message) -> int:
        with self.lock:
            self.asked.append((message.properties["name"], epoch_ms()))
        return DECISIONS[message.properties["decide"]]


def epoch_ms() -> int:
    return int(time.time() * 1000)


def half(topic: str, name: str, decide: str) -> Message:
    message = Message()
    message.topic = topic
    message.body = name.encode()
    message.add_property("name", name)
    message.add_property("decide", decide)
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--listen", type=float, default=12)
    parser.add_argument("--leave", default="", help="comma-separated name=decide to send and leave unresolved, "
                                                    "then exit at once (no checker, no consumer)")
    parser.add_argument("--checker-only", action="store_true", help="only run a producer with the checker")
    args = parser.parse_args()
    checker = Checker()
    producer = Producer(config(args.address), (args.topic,), checker)
    producer.startup()
    result: dict[str, object] = {"errors": {}}
    sent: dict[str, list[int]] = {}
    if args.leave:
        for item in args.leave.split(","):
            name, decide = item.split("=")
            producer.send(half(args.topic, name, decide), producer.begin_transaction())
        emit({"left": args.leave})
    if not args.checker_only:
        plan = [("committed", "rollback", "commit"), ("rolled-back", "commit", "rollback"),
                ("checker-commits", "commit", None), ("checker-rolls-back", "rollback", None),
                ("checker-unsure", "unknown", None)]
        for name, decide, action in plan:
            transaction = producer.begin_transaction()
            before = epoch_ms()
            producer.send(half(args.topic, name, decide), transaction)
            sent[name] = [before, epoch_ms()]
            if action == "commit":
                transaction.commit()
                try:
                    transaction.commit()
                    result["errors"]["commit-again"] = None  # type: ignore[index]
                except Exception as exc:
                    result["errors"]["commit-again"] = error(exc)  # type: ignore[index]
            elif action == "rollback":
                transaction.rollback()
    consumer = SimpleConsumer(config(args.address), args.group, {args.topic: FilterExpression()}, await_duration=1)
    consumer.startup()
    arrivals = []
    deadline = time.monotonic() + args.listen
    while time.monotonic() < deadline:
        for message in consumer.receive(32, 30):
            arrivals.append(message.properties["name"])
            consumer.ack(message)
    consumer.shutdown()
    with checker.lock:
        result["asked"] = [name for name, _ in checker.asked]
        result["asked_at"] = [[name, at] for name, at in checker.asked]
    result["sent"] = sent
    result["arrivals"] = arrivals
    emit(result)


if __name__ == "__main__":
    main()
