"""A fault checker in the spirit of OpenMessaging Chaos: load from the real clients, faults
injected into the real server, and an account of every message at the end.

Producers (tests/streaming.py) record every send the server acknowledged; a consumer records every
delivery. Meanwhile the server is hurt, round after round (:data:`FAULTS`). At the end:

* lost: acknowledged, never delivered (must be 0: RocketMQ's guarantee is at least once);
* duplicated: deliveries beyond the first of a message (allowed, counted);
* stored without an acknowledgement: delivered but never acknowledged to its producer (sends in
  flight at a fault; allowed, counted).

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
    lost_examples: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.fault}: {self.rounds} rounds, {self.acknowledged} acknowledged, {self.lost} lost, "
                f"{self.duplicated} duplicated, {self.stored_unacknowledged} stored unacknowledged, "
                f"{self.failed_sends} failed sends, {self.consumer_errors} consumer errors, "
                f"{self.restarts_by_checker} restarts by the checker, "
                f"{self.seconds:.0f} s")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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


def _sigkill(server: ServerProcess, pause_s: float) -> bool:
    server.kill()
    time.sleep(pause_s)
    server.start(timeout=60)
    return True


def _kill_store(server: ServerProcess, pause_s: float) -> bool:
    """SIGKILL the store process alone; the server either restarts it in place or exits, and then
    the checker starts it again (what an operator's supervisor would do)."""
    store = _store_process(server)
    if store is None:
        return _sigkill(server, pause_s)
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


def _sigstop(server: ServerProcess, pause_s: float) -> bool:
    """Freeze every process of the server for longer than the consumer's invisible duration."""
    frozen = _server_processes(server)
    for process in frozen:
        os.kill(process.pid, signal.SIGSTOP)
    time.sleep(INVISIBLE_S + 2 + pause_s)
    for process in frozen:
        os.kill(process.pid, signal.SIGCONT)
    return False


FAULTS: dict[str, Callable[[ServerProcess, float], bool]] = {
    "sigkill": _sigkill,
    "kill-store": _kill_store,
    "sigstop": _sigstop,
}
"""Each injects its fault and brings the server back; True if the checker restarted it."""


def run(server: ServerProcess, fault: str, workdir: Path, *, rounds: int, load_s: float, pause_s: float = 1.0,
        producers: int = 2) -> Report:
    """``rounds`` times: ``load_s`` seconds of load, then the fault; then drain and account."""
    inject = FAULTS[fault]
    started = time.monotonic()
    topic, group = f"faults-{fault}", f"faults-{fault}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    stop = workdir / f"stop-{fault}"
    report = Report(fault, rounds)
    # Gentle load (one sync sender and four sends in flight per producer): the consumer must keep up,
    # or the final drain outlasts the run.
    senders = [StreamingProducer(server, topic, f"{fault}{i}", stop, "--sync", "1", "--inflight", "4")
               for i in range(producers)]
    consumer = StreamingConsumer(server, topic, group, stop, invisible_s=INVISIBLE_S,
                                 idle_s=INVISIBLE_S + 8)
    try:
        # Faults start once every client is up (a client starting against a dead server is another test).
        deadline = time.monotonic() + 120
        while not (consumer.deliveries and all(s.acked for s in senders)):
            assert time.monotonic() < deadline, "the clients did not get going within two minutes"
            assert consumer.process.poll() is None, consumer.stderr.read_text()[-3000:]
            time.sleep(0.1)
        for _ in range(rounds):
            _wait_for_progress(senders, load_s)
            if inject(server, pause_s):
                report.restarts_by_checker += 1
        _wait_for_progress(senders, load_s)
        stop.touch()
        for sender in senders:
            sender.finish()
        consumer.finish()
    finally:
        for sender in senders:
            sender.kill()
        consumer.kill()
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
    report.consumer_errors = consumer.errors
    report.consumer_last_error = consumer.last_error
    report.seconds = time.monotonic() - started
    return report


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
