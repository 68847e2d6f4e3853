"""A fault checker in the spirit of OpenMessaging Chaos: load from the real clients, faults
injected into the real server, and an account of every message at the end.

Producers (tests/streaming.py) record every send the server acknowledged; a consumer records every
delivery. Meanwhile the server is hurt, round after round (:data:`FAULTS`). At the end:

* lost: acknowledged, never delivered (must be 0: RocketMQ's guarantee is at least once);
* duplicated: deliveries beyond the first of a message (allowed, counted);
* stored without an acknowledgement: delivered but never acknowledged to its producer (sends in
  flight at a fault; allowed, counted);
* out of order (``fifo=True``: a FIFO topic and group, each producer thread sending one message at a
  time into a message group of its own): an acknowledged message first delivered after a later
  acknowledged message of its group (must be 0). Only acknowledged messages have an order to keep:
  a send that timed out on the client may still be stored, later than the sends after it.

Some faults hurt a client instead: a second consumer of the group (a victim that takes messages and
never acks them) is frozen with SIGSTOP beyond the invisible duration, or SIGKILLed without
NotifyClientTermination. What a victim took counts for nothing: every message must still reach
the healthy consumer.

Run it as a command for long runs (``python -m tests.faults --help``); tests/test_faults.py runs
a short form of every fault in ``make test``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from tests.serverproc import ServerProcess
from tests.streaming import StreamingConsumer, StreamingProducer

INVISIBLE_S = 10
"""The consumer's invisible duration: a stopped server must stay stopped longer than this."""


@dataclass
class Report:
    fault: str
    rounds: int
    acknowledged: int = 0
    failed_sends: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    stored_unacknowledged: int = 0
    consumer_errors: int = 0
    consumer_last_error: object = None
    restarts_by_checker: int = 0
    """Times the server was down after a fault and the checker started it (rather than it
    recovering by itself)."""
    fifo: bool = False
    out_of_order: int = 0
    out_of_order_examples: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(message group, producer, index delivered late, the later index delivered before it)."""
    taken_by_victims: int = 0
    """Deliveries to victim consumers (client faults): messages that had to come back."""
    lost_examples: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.fault}{' (FIFO)' if self.fifo else ''}: {self.rounds} rounds, {self.acknowledged} "
                f"acknowledged, {self.lost} lost, {self.out_of_order if self.fifo else '-'} out of order, "
                f"{self.duplicated} duplicated, {self.stored_unacknowledged} stored unacknowledged, "
                f"{self.failed_sends} failed sends, {self.consumer_errors} consumer errors, "
                f"{self.restarts_by_checker} restarts by the checker, {self.taken_by_victims} taken by victims, "
                f"{self.seconds:.0f} s")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Scene:
    """What a fault may act on."""

    server: ServerProcess
    pause_s: float
    topic: str
    group: str
    stop: Path
    victims: list[StreamingConsumer] = field(default_factory=list)

    def victim(self) -> StreamingConsumer:
        """A second consumer of the group that takes messages and never acks them, once it has some."""
        victim = StreamingConsumer(self.server, self.topic, self.group, self.stop, invisible_s=INVISIBLE_S,
                                   name=f"-victim{len(self.victims)}", options=("--no-ack",))
        self.victims.append(victim)
        deadline = time.monotonic() + 60
        while not victim.deliveries:
            assert time.monotonic() < deadline, "the victim consumer took nothing within a minute"
            assert victim.process.poll() is None, victim.stderr.read_text()[-3000:]
            time.sleep(0.1)
        return victim


def _server_processes(server: ServerProcess) -> list[psutil.Process]:
    assert server.process is not None
    top = psutil.Process(server.process.pid)
    return [top, *top.children(recursive=True)]


def _store_process(server: ServerProcess) -> psutil.Process | None:
    for child in _server_processes(server)[1:]:
        try:
            if "store" in child.name() or any("store" in part for part in child.cmdline()[-3:]):
                return child
        except psutil.Error:
            continue
    return None


def _sigkill(scene: Scene) -> bool:
    scene.server.kill()
    time.sleep(scene.pause_s)
    scene.server.start(timeout=60)
    return True


def _kill_store(scene: Scene) -> bool:
    """SIGKILL the store process alone; the server either restarts it in place or exits, and then
    the checker starts it again (what an operator's supervisor would do)."""
    server, pause_s = scene.server, scene.pause_s
    store = _store_process(server)
    if store is None:
        return _sigkill(scene)
    store.kill()
    assert server.process is not None
    try:
        server.process.wait(10)
    except Exception:  # still running: it recovered in place
        return False
    server.process = None
    time.sleep(pause_s)
    server.start(timeout=60)
    return True


def _sigstop(scene: Scene) -> bool:
    """Freeze every process of the server for longer than the consumer's invisible duration."""
    frozen = _server_processes(scene.server)
    for process in frozen:
        os.kill(process.pid, signal.SIGSTOP)
    time.sleep(INVISIBLE_S + 2 + scene.pause_s)
    for process in frozen:
        os.kill(process.pid, signal.SIGCONT)
    return False


def _consumer_stops(scene: Scene) -> bool:
    """A consumer freezes holding messages (stops reading, sends nothing, keeps its connections)
    past their invisible duration, then wakes up and carries on taking messages it never acks."""
    victim = scene.victim()
    victim.process.send_signal(signal.SIGSTOP)
    time.sleep(INVISIBLE_S + 2 + scene.pause_s)
    victim.process.send_signal(signal.SIGCONT)
    return False


def _consumer_vanishes(scene: Scene) -> bool:
    """A consumer holding messages dies without NotifyClientTermination."""
    scene.victim().kill()
    time.sleep(scene.pause_s)
    return False


FAULTS: dict[str, Callable[[Scene], bool]] = {
    "sigkill": _sigkill,
    "kill-store": _kill_store,
    "sigstop": _sigstop,
    "consumer-stops": _consumer_stops,
    "consumer-vanishes": _consumer_vanishes,
}
"""Each injects its fault and brings the server back; True if the checker restarted it."""


def run(server: ServerProcess, fault: str, workdir: Path, *, rounds: int, load_s: float, pause_s: float = 1.0,
        producers: int = 2, fifo: bool = False) -> Report:
    """``rounds`` times: ``load_s`` seconds of load, then the fault; then drain and account."""
    inject = FAULTS[fault]
    started = time.monotonic()
    topic, group = f"faults-{fault}", f"faults-{fault}-g"
    server.cli("topic", "create", topic, "--queues", "4", *(("--type", "fifo") if fifo else ()))
    server.cli("group", "create", group, *(("--fifo",) if fifo else ()))
    stop = workdir / f"stop-{fault}"
    report = Report(fault, rounds, fifo=fifo)
    # Gentle load (one sync sender and four sends in flight per producer; FIFO: two sync senders, a
    # message group each): the consumer must keep up, or the final drain outlasts the run.
    options = ("--sync", "2", "--async", "0", "--fifo") if fifo else ("--sync", "1", "--inflight", "4")
    senders = [StreamingProducer(server, topic, f"{fault}{i}", stop, *options) for i in range(producers)]
    consumer = StreamingConsumer(server, topic, group, stop, invisible_s=INVISIBLE_S,
                                 idle_s=INVISIBLE_S + 8)
    scene = Scene(server, pause_s, topic, group, stop)
    try:
        # Faults start once every client is up (a client starting against a dead server is another test).
        deadline = time.monotonic() + 120
        while not (consumer.deliveries and all(s.acked for s in senders)):
            assert time.monotonic() < deadline, "the clients did not get going within two minutes"
            assert consumer.process.poll() is None, consumer.stderr.read_text()[-3000:]
            time.sleep(0.1)
        for _ in range(rounds):
            _wait_for_progress(senders, load_s)
            if inject(scene):
                report.restarts_by_checker += 1
        _wait_for_progress(senders, load_s)
        for victim in scene.victims:  # before the drain: what they hold must come back
            victim.kill()
        stop.touch()
        for sender in senders:
            sender.finish()
        consumer.finish()
    finally:
        for sender in senders:
            sender.kill()
        consumer.kill()
        for victim in scene.victims:
            victim.kill()
    acknowledged = {(s.prefix, index) for s in senders for index in s.acked}
    delivered = set(consumer.deliveries)
    report.acknowledged = len(acknowledged)
    report.failed_sends = sum(len(s.failed) for s in senders)
    report.delivered = len(delivered)
    lost = sorted(acknowledged - delivered)
    report.lost = len(lost)
    report.lost_examples = lost[:20]
    report.duplicated = sum(count - 1 for count in consumer.deliveries.values())
    report.stored_unacknowledged = len(delivered - acknowledged)
    if fifo:
        late = out_of_order(consumer.order, acknowledged)
        report.out_of_order = len(late)
        report.out_of_order_examples = late[:20]
    report.taken_by_victims = sum(victim.deliveries.total() for victim in scene.victims)
    report.consumer_errors = consumer.errors
    report.consumer_last_error = consumer.last_error
    report.seconds = time.monotonic() - started
    return report


def out_of_order(order: list[tuple[str, int, str]], acknowledged: set[tuple[str, int]]
                 ) -> list[tuple[str, str, int, int]]:
    """Acknowledged messages whose first delivery came after that of a later acknowledged message
    of their message group (a producer thread sends a group's messages one after the other, so
    index order is send order)."""
    seen: set[tuple[str, int]] = set()
    highest: dict[str, int] = {}
    late: list[tuple[str, str, int, int]] = []
    for producer, index, message_group in order:
        key = (producer, index)
        if key in seen or key not in acknowledged:
            continue
        seen.add(key)
        before = highest.get(message_group, -1)
        if index < before:
            late.append((message_group, producer, index, before))
        highest[message_group] = max(before, index)
    return late


def _wait_for_progress(senders: list[StreamingProducer], load_s: float) -> None:
    """Let the load run ``load_s`` seconds, and at least until some new send was acknowledged (after
    a fault the clients take a while to find the server again)."""
    before = sum(len(s.acked) for s in senders)
    deadline = time.monotonic() + max(120.0, load_s * 4)
    time.sleep(load_s)
    while sum(len(s.acked) for s in senders) <= before:
        assert time.monotonic() < deadline, "no send was acknowledged for two minutes"
        assert all(s.process.poll() is None for s in senders), "a producer ended early"
        time.sleep(0.1)
