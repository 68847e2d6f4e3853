"""Bad input on the serving port, in each TLS mode: garbage, a connection that says a few bytes and
stalls, the wrong kind of client, thousands of connections that never say anything. Each is closed
cleanly, costs at most one log line, and never keeps other clients out."""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator
from typing import cast

import grpc
import pytest

from tests.serverproc import ServerProcess
from tests.tls_support import LogMark, cert_path, health, tls_server

MODES = ("permissive", "enforcing", "disabled")
HANDSHAKE_TIMEOUT = 1.0
SERVING = 1
CLIENT_HELLO_START = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    args = ("--store", "memory", "--handshake-timeout", f"{HANDSHAKE_TIMEOUT:g}s")
    with tls_server(tmp_path_factory.mktemp("permissive"), *args) as permissive, \
            tls_server(tmp_path_factory.mktemp("enforcing"), *args, "--tls-mode", "enforcing") as enforcing, \
            tls_server(tmp_path_factory.mktemp("disabled"), *args, "--tls-mode", "disabled") as disabled:
        yield {"permissive": permissive, "enforcing": enforcing, "disabled": disabled}


def _healthy(servers: dict[str, ServerProcess], mode: str) -> None:
    server = servers[mode]
    assert health(server.address, cert_path(server) if mode == "enforcing" else None, timeout=10) == SERVING


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (reading what it sent meanwhile); fails past ``seconds``."""
    began = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept a bad connection open for {seconds} s")
    return time.monotonic() - began


def _new_lines(mark: LogMark) -> list[str]:
    time.sleep(0.3)  # the server's log line (if any) is written right after it closes
    return mark.lines()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("payload", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)),
                                     bytes([0x16, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20])],
                         ids=["http1", "binary", "tls-type-then-text"])
def test_garbage_is_closed_at_once_with_at_most_one_log_line(servers: dict[str, ServerProcess], mode: str,
                                                              payload: bytes) -> None:
    server = servers[mode]
    mark = LogMark(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        _closed_within(sock, HANDSHAKE_TIMEOUT + 5)
    lines = _new_lines(mark)
    assert len(lines) <= 1, lines
    if mode == "permissive":
        assert "speaks neither TLS nor HTTP/2" in lines[0]
    _healthy(servers, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("payload", [b"", PREFACE[:8], PREFACE, CLIENT_HELLO_START], ids=[
    "silent", "part-of-preface", "preface", "part-of-client-hello"])
def test_a_connection_that_stalls_is_closed_after_the_handshake_timeout(servers: dict[str, ServerProcess],
                                                                        mode: str, payload: bytes) -> None:
    server = servers[mode]
    mark = LogMark(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        _closed_within(sock, HANDSHAKE_TIMEOUT + 10)
    assert len(_new_lines(mark)) <= 1
    _healthy(servers, mode)


def test_tls_clients_on_a_disabled_port_and_plaintext_ones_on_an_enforcing_port_are_refused_cleanly(
        servers: dict[str, ServerProcess]) -> None:
    for mode, roots in (("disabled", cert_path(servers["permissive"])), ("enforcing", None)):
        server = servers[mode]
        mark = LogMark(server)
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            health(server.address, roots, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - began < 9, "refused only when the call's deadline ran out"
        assert len(_new_lines(mark)) <= 1
        _healthy(servers, mode)


@pytest.mark.parametrize("mode", MODES)
def test_thousands_of_silent_connections_neither_keep_clients_out_nor_stay_open(
        servers: dict[str, ServerProcess], mode: str) -> None:
    count = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    server = servers[mode]
    mark = LogMark(server)
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        _healthy(servers, mode)  # a real client gets in meanwhile, at once
        waiting = selectors.DefaultSelector()
        for sock in opened:
            sock.setblocking(False)
            waiting.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT + 30
        closed = 0
        while closed < count and time.monotonic() < deadline:
            for key, _ in waiting.select(timeout=1):
                sock = cast(socket.socket, key.fileobj)
                try:
                    if sock.recv(65536):
                        continue  # the server's HTTP/2 settings (plaintext gRPC speaks first)
                except (ConnectionResetError, BlockingIOError):
                    pass
                waiting.unregister(sock)
                closed += 1
        assert closed == count, f"{count - closed} of {count} silent connections still open"
    finally:
        for sock in opened:
            sock.close()
    assert len(_new_lines(mark)) <= count
    if mode == "permissive":
        assert _new_lines(mark) == []  # silence is not news: logged at DEBUG only
    _healthy(servers, mode)
