"""Shared by the TLS end-to-end tests: servers in each TLS mode, calls over plaintext and TLS, what
a server logged since a moment, and the certificate a port serves."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serverproc import ServerProcess


def cert_path(server: ServerProcess) -> Path:
    """The server's self-signed certificate, made at its first start."""
    return server.data_dir / "tls" / "cert.pem"


@contextlib.contextmanager
def channel(address: str, roots: Path | None = None, *, tls: bool = False) -> Iterator[grpc.Channel]:
    """A plaintext channel, or (``tls`` or ``roots``) a TLS one trusting ``roots`` (the system's if None)."""
    if not tls and roots is None:
        opened = grpc.insecure_channel(address)
    else:
        credentials = grpc.ssl_channel_credentials(roots.read_bytes() if roots else None)
        opened = grpc.secure_channel(address, credentials)
    with opened:
        yield opened


def health(address: str, roots: Path | None = None, *, tls: bool = False, timeout: float = 10) -> int:
    """grpc.health.v1 Check's status (1: SERVING); grpc.RpcError when the call fails."""
    with channel(address, roots, tls=tls) as opened:
        stub = health_pb2_grpc.HealthStub(opened)
        status: int = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout).status
        return status


def served_fingerprint(port: int, host: str = "127.0.0.1") -> str:
    """SHA-256 of the certificate a TLS handshake on ``host:port`` gets (offering ALPN h2, as gRPC clients do)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "h2"
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).digest().hex(":").upper()


class LogMark:
    """What a server logged after the moment this was made."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.offset = len(server.log())

    def lines(self) -> list[str]:
        return [line for line in self.server.log()[self.offset:].splitlines() if line.strip()]


@contextlib.contextmanager
def tls_server(directory: Path, *args: str) -> Iterator[ServerProcess]:
    """A server with ``rmqproxy serve`` options ``args`` for a whole module; at the end it must not have
    logged a traceback and must exit 0 on SIGTERM (as conftest's fixtures check)."""
    proc = ServerProcess(directory / "data", directory / "server.log", extra_args=args).start(timeout=60)
    try:
        yield proc
    finally:
        code = proc.stop() if proc.process is not None else 0
    log = proc.log()
    assert "Traceback" not in log, f"the server logged an exception:\n{log[-6000:]}"
    assert code == 0, f"server exited with {code} on SIGTERM:\n{log[-3000:]}"


def logged_fingerprint(server: ServerProcess) -> str:
    """The SHA-256 fingerprint the server logged for its certificate (the last one, after reloads)."""
    marker = "SHA-256 fingerprint "
    line = [line for line in server.log().splitlines() if marker in line][-1]
    return line.split(marker, 1)[1].split()[0].rstrip(",")
