"""A full disk: the server's data directory on a small tmpfs that the test fills and then enlarges.

Sends are refused with a status that says the disk is full (logged once, no traceback), the server
keeps serving, writing resumes by itself once space is back (no restart), and after a SIGKILL every
send that was acknowledged is there, read back by the real Python client.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests.serverproc import ServerProcess, python_client

METADATA = (("x-mq-client-id", "disk-full-test"), ("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"))
BODY = 128 * 1024
SMALL = "24m"
LARGE = "256m"


def _mount(target: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *options, str(target)], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs; the test can grow it with ``mount -o remount,size=...``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = _mount(disk, "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _message(topic: str, index: int) -> pb.Message:
    system = pb.SystemProperties(message_id=f"01{os.getpid():08X}{index:024X}", message_type=pb.MessageType.NORMAL,
                                 body_encoding=pb.Encoding.IDENTITY, born_host="disk-full-test")
    system.born_timestamp.GetCurrentTime()
    return pb.Message(topic=pb.Resource(name=topic), body=os.urandom(BODY), system_properties=system,
                      user_properties={"index": str(index)})


def _send(mq: rpc_grpc.MessagingServiceStub, topic: str, index: int) -> pb.Status:
    response: rpc.SendMessageResponse = mq.SendMessage(
        rpc.SendMessageRequest(messages=[_message(topic, index)]), metadata=METADATA, timeout=60)
    return response.status


def test_a_full_disk_refuses_sends_clearly_then_resumes_and_loses_nothing(
        small_disk: Path, tmp_path: Path, name: str) -> None:
    server = ServerProcess(small_disk / "data", tmp_path / "server.log").start()
    topic, group = f"{name}-t", f"{name}-g"
    try:
        server.cli("topic", "create", topic, "--queues", "1")
        server.cli("group", "create", group)
        acked: set[int] = set()
        with grpc.insecure_channel(server.address) as channel:
            mq = rpc_grpc.MessagingServiceStub(channel)
            index = 0
            refusal: pb.Status | None = None
            while refusal is None:
                assert index < 1000, "24 MiB never filled up"
                status = _send(mq, topic, index)
                if status.code == pb.Code.OK:
                    acked.add(index)
                else:
                    refusal = status
                index += 1
            assert refusal.code == pb.Code.INTERNAL_SERVER_ERROR, refusal
            assert "disk is full" in refusal.message, refusal.message
            assert len(acked) > 20, f"only {len(acked)} sends fitted: the test's disk is too small to say much"

            # Refused again, and cheaply: no reopen attempt while there is no room.
            for _ in range(5):
                again = _send(mq, topic, index)
                index += 1
                assert again.code == pb.Code.INTERNAL_SERVER_ERROR and "disk is full" in again.message, again
            # Reads still work while writes are refused.
            route = mq.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name=topic)), metadata=METADATA,
                                  timeout=60)
            assert route.status.code == pb.Code.OK, route.status

            grown = _mount(small_disk, "-o", f"remount,size={LARGE}")
            assert grown.returncode == 0, grown.stderr
            # Writes resume without a restart: the store reopens its database once there is room
            # (trying at most once a second), and from then on every send goes in.
            deadline = time.monotonic() + 30
            while (status := _send(mq, topic, index)).code != pb.Code.OK:
                assert "disk is full" in status.message, status
                assert time.monotonic() < deadline, f"writes did not resume once space was back: {status}"
                index += 1
                time.sleep(0.2)
            acked.add(index)
            for _ in range(10):
                index += 1
                status = _send(mq, topic, index)
                assert status.code == pb.Code.OK, f"a send failed after writes resumed: {status}"
                acked.add(index)
        log = server.log()
        assert log.count("the store's disk is full") == 1, log[-4000:]
        assert "writes resume" in log, log[-4000:]
        assert "Traceback" not in log, log[-6000:]
        assert server.process is not None and server.process.poll() is None

        server.kill()
        server.start()
        consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(len(acked)),
                                 "--ack", "--max-wait", "120")
        received = {int(m["properties"]["index"]) for m in consumed["received"]}
        assert acked <= received, f"acknowledged sends lost: {sorted(acked - received)[:20]}"
    finally:
        if server.process is not None:
            server.stop()
