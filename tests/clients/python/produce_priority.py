"""Send priority messages (RocketMQ 5.4) with the real Python client: each spec ``P:N`` sends N
messages of priority P, in the order given, synchronously; bodies are ``p<P>-<i>``, tags ``tag-<P>``."""

from __future__ import annotations

import argparse
from typing import Any

from _common import config, emit, error, tls
from rocketmq import Message, Producer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("specs", nargs="+", help="PRIORITY:COUNT")
    args = parser.parse_args()

    producer = Producer(config(args.address), (args.topic,), tls_enable=tls())
    producer.startup()
    sent: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for spec in args.specs:
        priority, count = (int(x) for x in spec.split(":"))
        for i in range(count):
            message = Message()
            message.topic = args.topic
            message.body = f"p{priority}-{i}".encode()
            message.tag = f"tag-{priority}"
            message.priority = priority
            try:
                receipt = producer.send(message)
                sent.append({"priority": priority, "index": i, "message_id": receipt.message_id})
            except Exception as exc:
                errors.append({"priority": priority, "index": i, **error(exc)})
    producer.shutdown()
    emit({"sent": sent, "errors": errors})


if __name__ == "__main__":
    main()
