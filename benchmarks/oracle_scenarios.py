"""The client scenarios the behaviour oracle runs against each server, with a real client's runner
(tests/clients/SCENARIOS.md), and what a client observes in each, as comparable rows.

Every scenario makes its own topics and groups (names carry the scenario), so one server runs them
all in turn. A row is ``(aspect, item, value)``; a value is a string compared for equality, or a
:class:`Seconds` (a measured delay with the delay the policy asks for), compared as a ratio.
"""

from __future__ import annotations

import base64
import itertools
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.oracle_peers import CHECK_FIRST_S, CHECK_INTERVAL_S, CHECK_MAX, Peer
from tests import clientmatrix

MAX_RETRIES = 2
RETRY_DELAYS_MS = (1000, 2000)
"""Both groups' customized retry policy: attempt 2 waits 1 s, attempt 3 waits 2 s (the reference's
default levels start 1 s, 5 s; the Python client reads whole seconds only)."""
INVISIBLE_S = 10  # the shortest invisible duration the reference accepts on a receive
HOLD_S = 40
"""How long the FIFO scenario's first message stays invisible: long enough that the next client (a
new process; a JVM takes 5-10 s to start on this loaded machine) still receives while it is held."""


@dataclass(frozen=True)
class Seconds:
    measured: float | None
    policy: float

    def __str__(self) -> str:
        if self.measured is None:
            return "-"
        return f"{self.measured:.2f} s (x{self.measured / self.policy:.2f})"

    def close_to(self, other: Seconds) -> bool:
        if self.measured is None or other.measured is None:
            return self.measured is other.measured
        return abs(self.measured - other.measured) <= max(0.5, 0.25 * max(self.measured, other.measured))


Value = str | Seconds
Row = tuple[str, str, Value]


@dataclass
class Context:
    peer: Peer
    language: str = "python"

    def run(self, scenario: str, **options: Any) -> dict[str, Any]:
        # Plaintext for every client (Java's and Go's default is TLS); both servers take either.
        result: dict[str, Any] = clientmatrix.run(self.language, scenario, timeout=240, tls="off",
                                                  endpoint=self.peer.address, **options)
        return result


def _index(message: dict[str, Any]) -> int:
    return int(message["properties"]["index"])


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _attempt_rows(aspect: str, events: list[dict[str, Any]], sent: int, policy_ms: tuple[int, ...],
                  max_retries: int) -> list[Row]:
    """Attempts per message and the delays between them, from a push consumer's listener calls."""
    calls: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for event in events:
        calls[_index(event)].append((event["attempt"], event["at_ms"]))
    seen = sorted({",".join(str(a) for a, _ in calls[i]) for i in range(sent)})
    rows: list[Row] = [(aspect, f"attempts seen per message (max retries {max_retries})", " / ".join(seen))]
    for step in range(1, max_retries + 1):
        gaps = [(calls[i][step][1] - calls[i][step - 1][1]) / 1000 for i in range(sent) if len(calls[i]) > step]
        policy = policy_ms[min(step, len(policy_ms)) - 1] / 1000
        rows.append((aspect.replace("delivery attempts", "retry delays"),
                     f"attempt {step} -> {step + 1} (policy {policy:g} s)", Seconds(_mean(gaps), policy)))
    return rows


def _dead_letter_rows(ctx: Context, aspect: str, group: str, topic: str, originals: dict[int, str]) -> list[Row]:
    """Read %DLQ%<group> with another group and describe what the dead letters carry."""
    dlq, reader = f"%DLQ%{group}", f"{group}-dlq-reader"
    ctx.peer.group(reader, False, 16, ())
    # 40 s: the reference sometimes let a reader have only one of two dead letters within 20 s (not
    # investigated); the wait ends as soon as all are read.
    got = ctx.run("simple-consume", topic=dlq, group=reader, expect=len(originals), ack=True,
                  max_wait_s=40, invisible_s=INVISIBLE_S)
    received = got["received"]
    rows: list[Row] = [(aspect, "dead letters read from " + dlq, f"{len(received)} of {len(originals)}")]
    if got["receive_errors"]:
        print(f"  {aspect}: receive errors (retried): {got['receive_errors']}", file=sys.stderr)
    if not received:
        return rows
    added: set[str] = set()
    for message in received:
        for key, value in message["properties"].items():
            if key not in ("index", "origin", "seq"):
                shown = ("<original id>" if value == originals.get(_index(message)) else
                         "<message group>" if value == message["message_group"] else value)
                added.add(f"{key}={shown}")
    kept = all(m["tag"] == f"tag-{_index(m) % 3}" and f"key-{_index(m)}" in m["keys"]
               and base64.b64decode(m["body"]).startswith(f"-{_index(m)}:".encode(), 1) for m in received)
    return [
        *rows,
        (aspect, "topic the client sees", " ".join(sorted({m["topic"] for m in received}))),
        (aspect, "message id", "the original's" if all(m["message_id"] == originals.get(_index(m))
                                                       for m in received) else "a new one"),
        (aspect, "body, tag, keys, index/origin properties kept", "yes" if kept else "no"),
        (aspect, "properties added", ", ".join(sorted(added)) or "none"),
        (aspect, "message type", " ".join(sorted({str(m.get("message_type")) for m in received}))),
        (aspect, "message groups", " ".join(sorted({m["message_group"] or "none" for m in received}))),
        (aspect, "delivery attempt on first read", " ".join(sorted({str(m["delivery_attempt"]) for m in received}))),
    ]


def push_normal(ctx: Context, max_retries: int = MAX_RETRIES, count: int = 2) -> list[Row]:
    """A push consumer that fails every call: attempts, backoff, then the dead letters."""
    topic, group = f"oc-push-{max_retries}", f"oc-push-g{max_retries}"
    ctx.peer.topic(topic, "NORMAL", 1)
    ctx.peer.group(group, False, max_retries, RETRY_DELAYS_MS)
    ctx.peer.settle()
    sent = ctx.run("produce", topic=topic, count=count, mode="sync", prefix="n")
    originals = {e["index"]: e["message_id"] for e in sent["sent"]}
    got = ctx.run("push-consume", topic=topic, group=group, expect=count * (max_retries + 1), fail="always",
                  max_wait_s=60, linger_s=4)
    rows = _attempt_rows("delivery attempts, push, normal group", got["events"], count, RETRY_DELAYS_MS,
                         max_retries)
    rows.append(("delivery attempts, push, normal group", "listener calls in all (sent x attempts)",
                 f"{len(got['events'])} ({count} x {max_retries + 1} expected)"))
    return rows + _dead_letter_rows(ctx, "dead letters, push, normal group", group, topic, originals)


def dead_letter_timing(ctx: Context) -> list[Row]:
    """When does a message whose last attempt failed reach the DLQ: with no consumer of its group
    online, and once one is back? (max retries 1; the consumer leaves right after the last failure)"""
    topic, group = "oc-dlq-when", "oc-dlq-when-g"
    ctx.peer.topic(topic, "NORMAL", 1)
    ctx.peer.group(group, False, 1, RETRY_DELAYS_MS)
    ctx.peer.group(f"{group}-dlq-reader", False, 16, ())
    ctx.peer.settle()
    ctx.run("produce", topic=topic, count=1, mode="sync", prefix="w")
    failed = ctx.run("push-consume", topic=topic, group=group, expect=2, fail="always", max_wait_s=60, linger_s=0.5)
    time.sleep(5)  # the last retry delay (1 s) and then some
    alone = ctx.run("simple-consume", topic=f"%DLQ%{group}", group=f"{group}-dlq-reader", expect=1, ack=True,
                    max_wait_s=10, invisible_s=INVISIBLE_S)
    back = ctx.run("push-consume", topic=topic, group=group, expect=1, fail="always", max_wait_s=15, linger_s=0.5)
    later = ctx.run("simple-consume", topic=f"%DLQ%{group}", group=f"{group}-dlq-reader", expect=1, ack=True,
                    max_wait_s=10, invisible_s=INVISIBLE_S)
    aspect = "dead letters: when"
    return [
        (aspect, "listener calls (max retries 1); the consumer then leaves", str(len(failed["events"]))),
        (aspect, "in the DLQ 5-15 s after the last failed attempt, no consumer of the group online",
         f"{len(alone['received'])} of 1"),
        (aspect, "listener calls when a consumer of the group comes back", str(len(back["events"]))),
        (aspect, "in the DLQ after that (if not before)", f"{len(later['received'])} of 1"),
    ]


def push_fifo(ctx: Context) -> list[Row]:
    """A FIFO push consumer failing every call on two message groups: local retries, their order, DLQ."""
    topic, group = "oc-fifo-push", "oc-fifo-push-g"
    ctx.peer.topic(topic, "FIFO", 1)
    ctx.peer.group(group, True, MAX_RETRIES, RETRY_DELAYS_MS)
    ctx.peer.settle()
    sent = ctx.run("produce-fifo", topic=topic, count=4, groups=2, prefix="f")
    originals = {e["index"]: e["message_id"] for e in sent["sent"]}
    got = ctx.run("push-consume", topic=topic, group=group, expect=4 * (MAX_RETRIES + 1), fail="always",
                  max_wait_s=60, linger_s=4)
    events = got["events"]
    aspect = "delivery attempts, push, FIFO group"
    rows = _attempt_rows(aspect, events, 4, RETRY_DELAYS_MS, MAX_RETRIES)
    order = [_index(e) for e in events]
    print(f"  listener calls, message index in call order: {' '.join(map(str, order))}", file=sys.stderr)
    last = {i: max(n for n, x in enumerate(order) if x == i) for i in set(order)}
    first = {i: order.index(i) for i in set(order)}
    rows += [
        ("FIFO blocking, push", "2nd message of a group only after the 1st is dead-lettered",
         "yes" if all(first.get(i + 2, 1 << 30) > last.get(i, -1) for i in (0, 1)) else "no"),
        ("FIFO blocking, push", "group mg-1 consumed while mg-0 retries",
         "yes" if first.get(1, 1 << 30) < last.get(0, -1) else "no"),
    ]
    return rows + _dead_letter_rows(ctx, "dead letters, push, FIFO group", group, topic, originals)


def fifo_simple(ctx: Context) -> list[Row]:
    """One queue, two message groups; a simple consumer holds the first message unacked: what else
    can be received while it is invisible? (the reference blocks the queue, rmqproxy the group)"""
    topic, group = "oc-fifo-simple", "oc-fifo-simple-g"
    ctx.peer.topic(topic, "FIFO", 1)
    ctx.peer.group(group, True, MAX_RETRIES, RETRY_DELAYS_MS)
    ctx.peer.settle()
    ctx.run("produce-fifo", topic=topic, count=4, groups=2, prefix="s")
    held = ctx.run("simple-consume", topic=topic, group=group, expect=1, batch=1, invisible_s=HOLD_S, max_wait_s=20)
    during = ctx.run("simple-consume", topic=topic, group=group, expect=3, batch=1, invisible_s=INVISIBLE_S,
                     ack=True, max_wait_s=8)

    def names(messages: list[dict[str, Any]]) -> str:
        return " ".join(f"{m['message_group']}#{m['properties']['seq']}" for m in messages) or "nothing"

    again = ctx.run("simple-consume", topic=topic, group=group, expect=1, batch=1, invisible_s=INVISIBLE_S,
                    ack=True, max_wait_s=HOLD_S + 10)
    rows: list[Row] = [
        ("FIFO blocking, simple consumer", "first receive (batch 1), left unacked", names(held["received"])),
        ("FIFO blocking, simple consumer", "received in the next 8 s (batch 1, acked)", names(during["received"])),
        ("FIFO blocking, simple consumer", "next receive once it is visible again", names(again["received"])),
    ]
    if held["received"] and again["received"]:
        back = again["received"][0]
        rows += [("delivery attempts, simple consumer, FIFO group", "the unacked message's next delivery attempt",
                  str(back["delivery_attempt"])),
                 ("retry delays, simple consumer", f"FIFO: attempt 1 -> 2 (invisible duration {HOLD_S} s)",
                  Seconds((back["at_ms"] - held["received"][0]["at_ms"]) / 1000, HOLD_S))]
    return rows


def simple_retry(ctx: Context) -> list[Row]:
    """A simple consumer that never acks: redelivery after the invisible duration, then the DLQ."""
    topic, group, retries = "oc-simple", "oc-simple-g", 1
    ctx.peer.topic(topic, "NORMAL", 1)
    ctx.peer.group(group, False, retries, RETRY_DELAYS_MS)
    ctx.peer.settle()
    sent = ctx.run("produce", topic=topic, count=1, mode="sync", prefix="r")
    originals = {e["index"]: e["message_id"] for e in sent["sent"]}
    got = ctx.run("simple-consume", topic=topic, group=group, expect=retries + 2, invisible_s=INVISIBLE_S,
                  max_wait_s=INVISIBLE_S * (retries + 1) + 8)
    received = got["received"]
    aspect = "delivery attempts, simple consumer, normal group"
    rows: list[Row] = [(aspect, f"attempts seen (max retries {retries}, never acked)",
                        ",".join(str(m["delivery_attempt"]) for m in received))]
    gaps = [(b["at_ms"] - a["at_ms"]) / 1000 for a, b in itertools.pairwise(received)]
    rows.append(("retry delays, simple consumer", f"attempt 1 -> 2 (invisible duration {INVISIBLE_S} s)",
                 Seconds(_mean(gaps[:1]), INVISIBLE_S)))
    return rows + _dead_letter_rows(ctx, "dead letters, simple consumer", group, topic, originals)


def transactions(ctx: Context) -> list[Row]:
    """Half messages left to the checker: who is asked, when, how often; what becomes visible."""
    topic, group = "oc-tx", "oc-tx-g"
    ctx.peer.topic(topic, "TRANSACTION", 1)
    ctx.peer.group(group, False, 16, ())
    ctx.peer.settle()
    linger = CHECK_FIRST_S + CHECK_INTERVAL_S * (CHECK_MAX + 2) + 2
    started = time.time() * 1000
    got = ctx.run("produce-transaction", topic=topic, linger=linger)
    asked: dict[str, list[float]] = defaultdict(list)
    for entry in got["asked"]:
        asked[entry["name"]].append(entry["at_ms"])
    aspect = "transaction checks"
    rows: list[Row] = [(aspect, f"checks per half message (max checks {CHECK_MAX}, linger {linger} s)",
                        ", ".join(f"{n} {len(asked.get(n, []))}" for n in got["sent"]))]
    unsure = asked.get("checker-unsure", [])
    if "sent_ms" in got:  # the runner says when each send returned
        firsts = [(min(times) - got["sent_ms"][name]) / 1000 for name, times in asked.items()
                  if name in got["sent_ms"] and name.startswith("checker-")]
        rows.append((aspect, "first check after the send (policy: first check after)",
                     Seconds(_mean(firsts), CHECK_FIRST_S)))
    else:
        rows.append((aspect, "first check after the producer's process started, its start-up included",
                     Seconds((min(min(v) for v in asked.values()) - started) / 1000 if asked else None, CHECK_FIRST_S)))
    rows.append((aspect, "between checks of the unknown one (policy: interval)",
                 Seconds(_mean([(b - a) / 1000 for a, b in itertools.pairwise(unsure)]), CHECK_INTERVAL_S)))
    again = "refused" if got["errors"]["commit-again"] else "accepted"
    rows.append((aspect, "second commit of a committed one", again))
    seen = ctx.run("simple-consume", topic=topic, group=group, expect=5, ack=True, invisible_s=INVISIBLE_S,
                   max_wait_s=8)
    visible = sorted(m["properties"]["name"] for m in seen["received"])
    rows.append(("transaction visibility", "messages a consumer receives", ", ".join(visible) or "none"))
    return rows


SCENARIOS: dict[str, Callable[[Context], list[Row]]] = {
    "push-normal": push_normal,
    "dead-letter-timing": dead_letter_timing,
    "push-fifo": push_fifo,
    "fifo-simple": fifo_simple,
    "simple-retry": simple_retry,
    "transactions": transactions,
}
