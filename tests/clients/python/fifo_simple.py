"""The FIFO blocking rule, seen by a SimpleConsumer of a FIFO group.

Sends A:0 B:0 A:1 B:1 C:0 A:2 (message group:sequence) to a FIFO topic, receives step by step and
prints what each step returned; then D:0 D:1 to show an expired head coming back first."""

from __future__ import annotations

import argparse
import time

from _common import config, emit
from rocketmq import FilterExpression, Message, Producer, SimpleConsumer


def label(message) -> str:  # type: ignore[no-untyped-def]
    return message.body.decode()


def receive(consumer: SimpleConsumer, count: int, invisible: int, wait: float = 6) -> list:  # type: ignore[type-arg]
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + wait
    while len(got) < count and time.monotonic() < deadline:
        got.extend(consumer.receive(count - len(got), invisible))
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    args = parser.parse_args()
    producer = Producer(config(args.address), (args.topic,))
    producer.startup()

    def send(*names: str) -> None:
        for name in names:
            message = Message()
            message.topic = args.topic
            message.body = name.encode()
            message.message_group = name[0]
            producer.send(message)

    send("A:0", "B:0", "A:1", "B:1", "C:0", "A:2")
    consumer = SimpleConsumer(config(args.address), args.group, {args.topic: FilterExpression()}, await_duration=5)
    consumer.startup()
    result: dict[str, object] = {}
    (a0,) = receive(consumer, 1, 30)
    result["first"] = [label(a0)]
    # Everything deliverable while A:0 is in flight: receive until nothing more comes.
    others = receive(consumer, 32, 30, wait=6)
    more = consumer.receive(32, 30)
    while more:
        others.extend(more)
        more = consumer.receive(32, 30)
    result["while_a_in_flight"] = [label(m) for m in others]
    for message in others:
        consumer.ack(message)
    consumer.ack(a0)
    after = receive(consumer, 2, 30)
    result["after_ack"] = [label(m) for m in after]
    for message in after:
        consumer.ack(message)

    # A head whose invisibility runs out: its group waits, then it comes back first.
    send("D:0", "D:1")
    (d0,) = receive(consumer, 1, 10)
    result["expired_head"] = [[label(d0), d0.delivery_attempt]]
    result["held_while_in_flight"] = [label(m) for m in consumer.receive(32, 10)]
    redelivered = receive(consumer, 1, 30, wait=20)
    result["redelivered"] = [[label(m), m.delivery_attempt] for m in redelivered]
    for message in redelivered:
        consumer.ack(message)
    result["next"] = [[label(m), m.delivery_attempt] for m in receive(consumer, 1, 30)]
    producer.shutdown()
    consumer.shutdown()
    emit(result)


if __name__ == "__main__":
    main()
