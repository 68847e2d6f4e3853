"""The real clients with TLS on and off, against each TLS mode: the Python client (tls_enable=True)
and the Node.js client (sslEnabled: true) trust the server's self-signed certificate through
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH and send and receive against permissive and enforcing; plaintext
clients work against permissive and disabled and are refused cleanly by enforcing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess, node_client, python_client
from tests.tls_support import LogMark, cert_path, health, tls_server

N = 20
Client = Callable[..., Any]
CLIENTS: dict[str, Client] = {"python": python_client, "node": node_client}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    with tls_server(tmp_path_factory.mktemp("permissive")) as permissive, \
            tls_server(tmp_path_factory.mktemp("enforcing"), "--tls-mode", "enforcing") as enforcing, \
            tls_server(tmp_path_factory.mktemp("disabled"), "--tls-mode", "disabled") as disabled:
        yield {"permissive": permissive, "enforcing": enforcing, "disabled": disabled}


def _names(server: ServerProcess, label: str) -> tuple[str, str]:
    topic, group = f"{label}-topic", f"{label}-group"
    admin = ("--ca", str(cert_path(server))) if "enforcing" in str(server.data_dir) else ()
    server.cli(*admin, "topic", "create", topic)
    server.cli(*admin, "group", "create", group)
    return topic, group


@pytest.mark.parametrize("language", sorted(CLIENTS))
@pytest.mark.parametrize(("mode", "tls"), [("permissive", True), ("enforcing", True), ("permissive", False),
                                           ("disabled", False)])
def test_clients_send_and_receive(servers: dict[str, ServerProcess], language: str, mode: str, tls: bool) -> None:
    server = servers[mode]
    topic, group = _names(server, f"{language}-{mode}-{'tls' if tls else 'plain'}")
    roots: Path | None = cert_path(server) if tls else None
    client = CLIENTS[language]
    produced = client("produce", server.address, topic, str(N), tls_ca=roots)
    assert produced["errors"] == [] and len(produced["sent"]) == N
    consumed = client("simple_consume", server.address, topic, group, *(["--expect"] if language == "python" else []),
                      str(N), "--ack", "--max-wait", "60", tls_ca=roots)
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(s["message_id"] for s in produced["sent"])


def test_plaintext_clients_are_refused_cleanly_by_enforcing(servers: dict[str, ServerProcess]) -> None:
    server = servers["enforcing"]
    topic, group = _names(server, "plain-on-enforcing")
    mark = LogMark(server)
    produced = python_client("produce", server.address, topic, "2", "--mode", "sync")
    assert produced["sent"] == [] and len(produced["errors"]) == 2
    consumed = node_client("simple_consume", server.address, topic, group, "1", "--startup-wait", "10",
                           "--max-wait", "5")
    assert consumed["startup_error"] is not None and consumed["received"] == []
    # Each refused connection costs at most one line (gRPC's own, about the failed handshake), nothing else.
    lines = mark.lines()
    assert all("Handshake failed" in line for line in lines), lines
    assert health(server.address, cert_path(server)) == 1
