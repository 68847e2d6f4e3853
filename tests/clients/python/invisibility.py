"""Redelivery and ChangeInvisibleDuration, seen from a SimpleConsumer.

1. receive one message, do not ack: it must come back after its invisible duration, attempt 2;
2. change_invisible_duration(15 s) on the redelivered one postpones it (back after 15 s, not 10 s);
   acking with the handle from before the change is refused, acking with the new one works.
Prints timings and outcomes; the test asserts on them.
"""

from __future__ import annotations

import argparse
import time

from _common import config, emit, error
from rocketmq import FilterExpression, SimpleConsumer


def receive_one(consumer: SimpleConsumer, invisible: int, wait: float) -> object | None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = consumer.receive(1, invisible)
        if messages:
            return messages[0]
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    args = parser.parse_args()
    consumer = SimpleConsumer(config(args.address), args.group, {args.topic: FilterExpression()}, await_duration=5)
    consumer.startup()
    result: dict[str, object] = {}

    first = receive_one(consumer, 10, 30)
    assert first is not None, "nothing to receive"
    t0 = time.monotonic()
    result["first"] = {"message_id": first.message_id, "attempt": first.delivery_attempt}

    # Before the 10 s run out nothing comes back (the await duration bounds each try to ~5 s).
    early = consumer.receive(1, 10)
    result["early_receive_count"] = len(early)
    second = receive_one(consumer, 10, 30)
    assert second is not None, "the unacked message did not come back"
    result["second"] = {"message_id": second.message_id, "attempt": second.delivery_attempt,
                        "after_s": time.monotonic() - t0}

    old_handle = second.receipt_handle
    t1 = time.monotonic()
    consumer.change_invisible_duration(second, 15)  # updates second.receipt_handle
    result["handle_changed"] = old_handle != second.receipt_handle
    new_handle = second.receipt_handle

    second.receipt_handle = old_handle
    try:
        consumer.ack(second)
        result["old_handle_ack"] = "accepted"
    except Exception as exc:
        result["old_handle_ack"] = error(exc)

    # Back after the new 15 s, not after the original 10 s: the test checks the arrival time.
    third = receive_one(consumer, 10, 30)
    result["third"] = None if third is None else {
        "message_id": third.message_id, "attempt": third.delivery_attempt, "after_s": time.monotonic() - t1}
    second.receipt_handle = new_handle
    try:
        consumer.ack(second)
        result["stale_new_handle_ack"] = "accepted"
    except Exception as exc:
        result["stale_new_handle_ack"] = error(exc)
    if third is not None:
        consumer.ack(third)
        result["third_acked"] = True
    consumer.shutdown()
    emit(result)


if __name__ == "__main__":
    main()
