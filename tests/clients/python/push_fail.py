"""A PushConsumer whose listener fails every time (or a given number of times per message).

Records, per message id, each delivery's attempt number and arrival time (monotonic seconds),
until --expect deliveries in total have been seen or time runs out. With --stream, also prints
each delivery as it happens (with its wall-clock time, "epoch", to compare with other processes)."""

from __future__ import annotations

import argparse
import json
import threading
import time

from _common import config, emit
from rocketmq import ConsumeResult, FilterExpression, MessageListener, PushConsumer


class Failing(MessageListener):
    def __init__(self, fail_times: int, stream: bool) -> None:
        self.fail_times = fail_times
        self.stream = stream
        self.lock = threading.Lock()
        self.deliveries: dict[str, list[tuple[int, float]]] = {}
        self.origin = time.monotonic()

    def consume(self, message) -> ConsumeResult:  # type: ignore[no-untyped-def]
        with self.lock:
            seen = self.deliveries.setdefault(message.message_id, [])
            seen.append((message.delivery_attempt, time.monotonic() - self.origin))
            fail = self.fail_times < 0 or len(seen) <= self.fail_times
            if self.stream:
                print(json.dumps({"message_id": message.message_id, "attempt": message.delivery_attempt,
                                  "at": seen[-1][1], "epoch": time.time()}), flush=True)
        return ConsumeResult.FAILURE if fail else ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--expect", type=int, required=True, help="total deliveries to wait for")
    parser.add_argument("--fail-times", type=int, default=-1, help="fail this often per message (-1: always)")
    parser.add_argument("--max-wait", type=float, default=120)
    parser.add_argument("--linger", type=float, default=2)
    parser.add_argument("--stream", action="store_true", help="also print each delivery as it happens")
    args = parser.parse_args()
    listener = Failing(args.fail_times, args.stream)
    consumer = PushConsumer(config(args.address), args.group, listener, {args.topic: FilterExpression()})
    consumer.startup()
    deadline = time.monotonic() + args.max_wait
    while time.monotonic() < deadline:
        with listener.lock:
            if sum(len(v) for v in listener.deliveries.values()) >= args.expect:
                break
        time.sleep(0.05)
    time.sleep(args.linger)
    consumer.shutdown()
    with listener.lock:
        emit({"deliveries": listener.deliveries})


if __name__ == "__main__":
    main()
