"""Receive with a SimpleConsumer until N messages arrived (or time runs out); optionally ack them.

Prints every received message with all its fields, and what the acks answered."""

from __future__ import annotations

import argparse

from _common import config, describe, emit, error, now, subscription, tls
from rocketmq import SimpleConsumer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--ack", action="store_true")
    parser.add_argument("--invisible", type=int, default=20, help="seconds")
    parser.add_argument("--max-wait", type=float, default=60, help="seconds")
    parser.add_argument("--await-duration", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tag", default="*")
    parser.add_argument("--sql", help="a SQL92 filter instead of a tag expression")
    args = parser.parse_args()

    consumer = SimpleConsumer(config(args.address), args.group, {args.topic: subscription(args.tag, args.sql)},
                              await_duration=args.await_duration, tls_enable=tls())
    consumer.startup()
    received, ack_errors, receive_errors = [], [], []
    deadline = now() + args.max_wait
    while len(received) < args.expect and now() < deadline:
        try:
            messages = consumer.receive(min(args.batch, args.expect - len(received)), args.invisible)
        except Exception as exc:
            receive_errors.append(error(exc))
            continue
        for message in messages:
            received.append(describe(message))
            if args.ack:
                try:
                    consumer.ack(message)
                except Exception as exc:
                    ack_errors.append({"message_id": message.message_id, **error(exc)})
    consumer.shutdown()
    emit({"received": received, "ack_errors": ack_errors, "receive_errors": receive_errors})


if __name__ == "__main__":
    main()
