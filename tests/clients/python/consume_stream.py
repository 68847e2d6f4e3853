"""Receive and ack until told to stop, printing each delivery the moment it arrives.

For fault tests (tests/faults): whoever reads stdout knows every delivery, so lost, duplicated and
out-of-order messages can be counted while the server is being killed, stopped and restarted.
Errors (the server is down) are printed and retried after a short pause.

Prints one JSON line per delivery, {"got": [PRODUCER, INDEX], "attempt": N, "group": MESSAGE_GROUP},
per ack answered, {"acked": [PRODUCER, INDEX]}, and per error, {"error": ...}; once the stop file
exists and for --idle seconds nothing arrived and no receive failed (or --max-seconds passed),
{"summary": {...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import config, emit, error, subscription, tls
from rocketmq import SimpleConsumer


def say(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--invisible", type=int, default=10, help="seconds")
    parser.add_argument("--await-duration", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--idle", type=float, default=5, help="after the stop file: quiet seconds before ending")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--no-ack", action="store_true", help="take messages and never ack them (a bad consumer)")
    args = parser.parse_args()

    consumer = SimpleConsumer(config(args.address, request_timeout=5), args.group, {args.topic: subscription()},
                              await_duration=args.await_duration, tls_enable=tls())
    consumer.startup()
    counts = {"got": 0, "acked": 0, "errors": 0}
    deadline = time.monotonic() + args.max_seconds
    last_got = last_error = time.monotonic()
    while time.monotonic() < deadline:
        # Quiet means receives that succeed and find nothing: a server still failing (restarting
        # after a fault) is not an empty one, so errors keep the consumer going.
        now = time.monotonic()
        if args.stop_file.exists() and now - last_got > args.idle and now - last_error > args.idle:
            break
        try:
            messages = consumer.receive(args.batch, args.invisible)
        except Exception as exc:
            counts["errors"] += 1
            last_error = time.monotonic()
            say({"error": error(exc)})
            time.sleep(0.2)
            continue
        for message in messages:
            last_got = time.monotonic()
            key = [message.properties.get("producer"), int(message.properties.get("index", "-1"))]
            counts["got"] += 1
            say({"got": key, "attempt": message.delivery_attempt, "group": message.message_group})
            if args.no_ack:
                continue
            try:
                consumer.ack(message)
            except Exception as exc:
                counts["errors"] += 1
                say({"error": error(exc), "ack_of": key})
                continue
            counts["acked"] += 1
            say({"acked": key})
    emit({"summary": counts})  # exits at once: the client's shutdown may wait on a server that is gone


if __name__ == "__main__":
    main()
