"""Pieces the benchmarks share: a server process they start and stop themselves, raw gRPC stubs
(not the client libraries, so the client is not what is measured), and message building."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

REPO = Path(__file__).resolve().parent.parent
READY = "rmqproxy listening on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # RocksDB deletes files as we walk
                total += os.path.getsize(os.path.join(root, name))
    return total


@dataclass
class Server:
    """``rmqproxy serve`` on loopback, with its own data directory; stopped by ``stop()``."""

    data_dir: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Server:
        log = open(self.data_dir.parent / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--metrics-port", "0", "--console-port", "0",
             *(() if "--workers" in self.args else ("--workers", "1")), *self.args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = (self.data_dir.parent / f"server-{self.port}.log").read_text(errors="replace")
            if READY in text:
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{text}")
            time.sleep(0.05)
        raise TimeoutError("server did not start")

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "rmqproxy", "--server", self.address, *args], check=True,
                       capture_output=True, cwd=REPO)

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


def metadata(client_id: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("x-mq-client-id", client_id or f"bench-{uuid.uuid4().hex[:12]}"), ("x-mq-language", "PYTHON"))


def message(topic: str, body: bytes, index: int, tag: str | None = "bench") -> pb.Message:
    built = pb.Message(body=body)
    built.topic.name = topic
    built.system_properties.message_id = f"{uuid.uuid4().hex.upper()}{index:08X}"
    built.system_properties.message_type = pb.MessageType.NORMAL
    if tag:
        built.system_properties.tag = tag
    return built


def send_request(topic: str, body: bytes, count: int, start: int = 0) -> rpc.SendMessageRequest:
    return rpc.SendMessageRequest(messages=[message(topic, body, start + i) for i in range(count)])


def aio_channel(address: str, tls_ca: str | None, options: Sequence[tuple[str, int | str]] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to ``address``: plaintext, or TLS trusting the PEM file ``tls_ca``."""
    if tls_ca is None:
        return grpc.aio.insecure_channel(address, options=options)
    roots = Path(tls_ca).read_bytes()
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=roots), options=options)


def async_stub(address: str) -> tuple[grpc.aio.Channel, rpc_grpc.MessagingServiceStub]:
    channel = grpc.aio.insecure_channel(address)
    return channel, rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]


def csv_list(kind: type, allowed: Sequence[str] | None = None) -> Callable[[str], list[object]]:
    """An argparse type: a comma-separated list of ``kind`` (ints may use _ as in 1_000_000)."""
    def parse(text: str) -> list[object]:
        values: list[object] = [kind(part.strip().replace("_", "")) if kind is int else part.strip()
                  for part in text.split(",") if part.strip()]
        if allowed is not None:
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise argparse.ArgumentTypeError(f"unknown {', '.join(map(str, unknown))}; "
                                                 f"choose from {', '.join(allowed)}")
        if not values:
            raise argparse.ArgumentTypeError("empty list")
        return values

    return parse
