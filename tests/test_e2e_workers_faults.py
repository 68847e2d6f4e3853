"""Faults under ``serve --workers 2``: a worker SIGKILLed while producers send, the store process
SIGKILLed, and SIGTERM draining calls in flight. Shown with real clients and by counting what
survived."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from tests.e2e_support import max_offsets_total
from tests.serverproc import ServerProcess, python_client
from tests.test_durability import StreamingProducer
from tests.test_e2e_bad_input import receive
from tests.test_e2e_workers import stub, two_workers
from tests.workers_support import pinned_channel, store_pid, workers


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_worker_killed_mid_stream_loses_no_acknowledged_send_and_clients_carry_on(
        server_with: Callable[..., ServerProcess], tmp_path: Path, name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    stop = tmp_path / "stop"
    producers = [StreamingProducer(server, topic, f"p{i}", stop) for i in range(2)]
    try:
        _eventually(lambda: sum(len(p.acked) for p in producers) >= 200, 120, "the producers did not get going")
        victim = workers(server)[1]
        os.kill(victim, signal.SIGKILL)
        at_kill = sum(len(p.acked) for p in producers)
        _eventually(lambda: workers(server)[1] != victim, 60, "the supervisor did not restart worker 1")
        # Sending goes on (clients whose connection went to worker 1 reconnect, to either worker).
        _eventually(lambda: all(len(p.acked) >= at_kill // 2 + 100 for p in producers)
                    and sum(len(p.acked) for p in producers) >= at_kill + 300, 120, "sending did not go on")
        stop.touch()
        for producer in producers:
            producer.finish()
    finally:
        for producer in producers:
            producer.kill()
    stored = max_offsets_total(server.cli_json("topic", "describe", topic))
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(stored), "--ack",
                             "--max-wait", "120")
    received = Counter((m["properties"]["producer"], int(m["properties"]["index"])) for m in consumed["received"])
    acked = {(p.prefix, index) for p in producers for index in p.acked}
    assert not acked - set(received), f"{len(acked - set(received))} acknowledged sends lost"
    assert sum(received.values()) == stored
    assert "died (exit code -9)" in server.log()


def test_the_store_process_killed_is_restarted_and_acknowledged_sends_survive(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    before = python_client("produce", server.address, topic, "30", "--mode", "sync")
    assert before["errors"] == []
    victim = store_pid(server)
    os.kill(victim, signal.SIGKILL)
    _eventually(lambda: store_pid(server) != victim, 60, "the store process was not restarted")
    _eventually(lambda: server.cli("topic", "list", check=False).returncode == 0, 30, "the workers did not reconnect")
    after = python_client("produce", server.address, topic, "10", "--mode", "sync")
    assert after["errors"] == []
    assert max_offsets_total(server.cli_json("topic", "describe", topic)) == 40
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "40", "--ack")
    sent = [m["message_id"] for m in before["sent"]] + [m["message_id"] for m in after["sent"]]
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(sent)
    assert sorted(workers(server)) == [1, 2] and "reconnected to the store process" in server.log()


def test_sigterm_drains_calls_in_flight_then_stops_every_process(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = two_workers(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    pids = [*workers(server).values(), store_pid(server)]
    outcomes: list[object] = []

    def poll(channel: grpc.Channel) -> None:
        try:
            statuses, _messages = receive(stub(channel), group, topic, poll_s=3)
            outcomes.append(statuses[0].code if statuses else None)
        except grpc.RpcError as exc:
            outcomes.append(exc.code())

    polls = [threading.Thread(target=poll, args=(pinned_channel(server, w),)) for w in (1, 2)]
    for thread in polls:
        thread.start()
    time.sleep(1)  # both long polls are waiting
    began = time.monotonic()
    assert server.stop() == 0
    for thread in polls:
        thread.join(30)
    # Each receive ran to its own end (nothing arrived: MESSAGE_NOT_FOUND), not cut off by the stop.
    assert outcomes == [pb.Code.MESSAGE_NOT_FOUND] * 2, outcomes
    assert time.monotonic() - began >= 1.5  # the stop waited for them
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
