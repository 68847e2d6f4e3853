"""A FIFO PushConsumer whose listener fails at random (about --fail-rate of the time).

Records every successful consumption (wall-clock time, message group, sequence, message id,
attempt) and every failure, until the file --stop-file exists (or --max-wait runs out), so several
instances can run side by side and a test can merge their records by time."""

from __future__ import annotations

import argparse
import os
import random
import threading
import time

from _common import config, emit
from rocketmq import ConsumeResult, FilterExpression, MessageListener, PushConsumer


class Flaky(MessageListener):
    def __init__(self, fail_rate: float, seed: int) -> None:
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.successes: list[tuple[float, str, int, str, int]] = []
        self.failures: list[tuple[float, str, int]] = []

    def consume(self, message) -> ConsumeResult:  # type: ignore[no-untyped-def]
        group, seq = message.properties["group"], int(message.properties["seq"])
        with self.lock:
            if self.random.random() < self.fail_rate:
                self.failures.append((time.time(), group, seq))
                return ConsumeResult.FAILURE
            self.successes.append((time.time(), group, seq, message.message_id, message.delivery_attempt))
        return ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--max-wait", type=float, default=300)
    args = parser.parse_args()
    listener = Flaky(args.fail_rate, args.seed)
    consumer = PushConsumer(config(args.address), args.group, listener, {args.topic: FilterExpression()})
    consumer.startup()
    deadline = time.monotonic() + args.max_wait
    while time.monotonic() < deadline and not os.path.exists(args.stop_file):
        time.sleep(0.1)
    with listener.lock:
        result = {"successes": list(listener.successes), "failures": list(listener.failures)}
    emit(result)


if __name__ == "__main__":
    main()
