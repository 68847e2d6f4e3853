"""Send until told to stop, printing each acknowledgement the moment it arrives.

For crash tests: whoever reads stdout knows at every moment which sends the server acknowledged,
so it can kill the server while sends are in flight and check afterwards that every acknowledged
one survived. Threads share one Producer: --sync threads each send one message at a time,
--async threads each keep --inflight asynchronous sends outstanding. Every message carries the
properties ``producer`` (--prefix) and ``index`` (unique within this process). With --fifo each sync
thread sends into a message group of its own, ``<prefix>-<thread>``, one message after the other.

Prints one JSON line per acknowledgement, {"ack": INDEX, "message_id": ID}, and per failed send,
{"failed": INDEX, "error": ...}; after the stop file appears (or --max-seconds passed), waits at
most --drain seconds for outstanding sends and prints {"summary": {"acked": N, "failed": N,
"unsettled": N}} as its last line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from _common import config, emit, error
from rocketmq import Message, Producer


class Log:
    """Thread-safe JSON lines on stdout, flushed at once, and their counts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"acked": 0, "failed": 0}

    def ack(self, index: int, message_id: str) -> None:
        self._write("acked", {"ack": index, "message_id": message_id})

    def fail(self, index: int, exc: BaseException) -> None:
        self._write("failed", {"failed": index, **error(exc)})

    def _write(self, kind: str, line: dict[str, Any]) -> None:
        with self.lock:
            self.counts[kind] += 1
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()


def build(topic: str, prefix: str, index: int, message_group: str | None = None) -> Message:
    message = Message()
    message.topic = topic
    if message_group is not None:
        message.message_group = message_group
    message.body = f"{prefix}-{index}".encode()
    message.tag = "stream"
    message.add_property("producer", prefix)
    message.add_property("index", str(index))
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("--prefix", default="p")
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--sync", type=int, default=2, help="threads sending one message at a time")
    parser.add_argument("--async", dest="async_threads", type=int, default=1,
                        help="threads keeping --inflight asynchronous sends outstanding")
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--drain", type=float, default=20)
    parser.add_argument("--fifo", action="store_true", help="each sync thread sends into its own message group")
    args = parser.parse_args()

    producer = Producer(config(args.address, request_timeout=5), (args.topic,))
    producer.startup()
    log = Log()
    indexes = itertools.count()
    deadline = time.monotonic() + args.max_seconds
    pending: set[Future[Any]] = set()
    pending_lock = threading.Lock()

    def stopped() -> bool:
        return args.stop_file.exists() or time.monotonic() > deadline

    def sync_sender(thread: int) -> None:
        message_group = f"{args.prefix}-{thread}" if args.fifo else None
        while not stopped():
            index = next(indexes)
            try:
                log.ack(index, producer.send(build(args.topic, args.prefix, index, message_group)).message_id)
            except Exception as exc:
                log.fail(index, exc)
                time.sleep(0.05)  # the server is down: do not spin

    def async_sender() -> None:
        slots = threading.Semaphore(args.inflight)
        failing = threading.Event()
        while not stopped():
            if not slots.acquire(timeout=0.1):
                continue
            if failing.is_set():  # the server is down: do not spin
                time.sleep(0.05)
            index = next(indexes)

            def settle(future: Future[Any], index: int = index) -> None:
                with pending_lock:
                    pending.discard(future)
                try:
                    log.ack(index, future.result().message_id)
                    failing.clear()
                except Exception as exc:
                    log.fail(index, exc)
                    failing.set()
                slots.release()

            try:
                future = producer.send_async(build(args.topic, args.prefix, index))
            except Exception as exc:
                log.fail(index, exc)
                slots.release()
                time.sleep(0.05)
                continue
            with pending_lock:
                pending.add(future)
            future.add_done_callback(settle)

    threads = [threading.Thread(target=sync_sender, args=(thread,), daemon=True) for thread in range(args.sync)]
    threads += [threading.Thread(target=async_sender, daemon=True) for _ in range(args.async_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain_until = time.monotonic() + args.drain
    while time.monotonic() < drain_until:
        with pending_lock:
            if not pending:
                break
        time.sleep(0.05)
    with pending_lock:
        unsettled = len(pending)
    with log.lock:
        summary = {**log.counts, "unsettled": unsettled}
    emit({"summary": summary})  # exits at once: the client's shutdown would wait on a server that may be gone


if __name__ == "__main__":
    main()
