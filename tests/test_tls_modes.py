"""The serving port in each TLS mode, from outside: which clients get in (raw gRPC, grpcurl, the
admin command), that every service on the port follows the mode, that handlers see the client's own
address behind the permissive relay, and that a port already in use stops a second server at once."""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as otlp_grpc

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from tests.serverproc import REPO, ServerProcess
from tests.test_e2e_grpcurl import grpcurl_path
from tests.tls_support import cert_path, channel, health, logged_fingerprint, served_fingerprint, tls_server

MODES = ("permissive", "enforcing", "disabled")
SERVING = 1


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """One server per TLS mode (the in-memory store: TLS does not care where messages live)."""
    with tls_server(tmp_path_factory.mktemp("permissive"), "--store", "memory") as permissive, \
            tls_server(tmp_path_factory.mktemp("enforcing"), "--store", "memory", "--tls-mode", "enforcing") \
            as enforcing, \
            tls_server(tmp_path_factory.mktemp("disabled"), "--store", "memory", "--tls-mode", "disabled") \
            as disabled:
        yield {"permissive": permissive, "enforcing": enforcing, "disabled": disabled}


def test_permissive_serves_plaintext_and_tls_on_one_port_with_the_certificate_it_logged(
        servers: dict[str, ServerProcess]) -> None:
    server = servers["permissive"]
    assert health(server.address) == SERVING
    assert health(server.address, cert_path(server)) == SERVING
    assert health(f"localhost:{server.port}", cert_path(server)) == SERVING  # the certificate names localhost
    assert served_fingerprint(server.port) == logged_fingerprint(server)
    assert f"self-signed TLS certificate {cert_path(server)}" in server.log()  # --store memory: in --data-dir


def _messaging(opened: grpc.Channel) -> int:
    stub = rpc_grpc.MessagingServiceStub(opened)  # type: ignore[no-untyped-call]
    response = stub.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name="no-such-topic")), timeout=10,
                               metadata=(("x-mq-client-id", "tls-modes"),))
    code: int = response.status.code
    return code


def _admin(opened: grpc.Channel) -> int:
    return len(api_grpc.AdminStub(opened).ListTopics(api.ListTopicsRequest(), timeout=10).topics)  # type: ignore[no-untyped-call]


def _client_metrics(opened: grpc.Channel) -> None:
    otlp_grpc.MetricsServiceStub(opened).Export(otlp.ExportMetricsServiceRequest(), timeout=10)  # type: ignore[no-untyped-call]


def _grpcurl(server: ServerProcess, *how: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([grpcurl_path(), "-connect-timeout", "10", *how, server.address, "list"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("mode", MODES)
def test_every_service_on_the_port_follows_the_mode(servers: dict[str, ServerProcess], mode: str) -> None:
    server = servers[mode]
    tls_ok, plaintext_ok = mode != "disabled", mode != "enforcing"
    certificate = cert_path(servers["permissive" if mode == "disabled" else mode])  # disabled has none
    for use_tls, allowed in ((True, tls_ok), (False, plaintext_ok)):
        roots = certificate if use_tls else None
        with channel(server.address, roots, tls=use_tls) as opened:
            if allowed:
                assert _messaging(opened) == pb.Code.TOPIC_NOT_FOUND
                assert _admin(opened) == 0
                _client_metrics(opened)
                assert health(server.address, roots, tls=use_tls) == SERVING
            else:
                for call in (_messaging, _admin, _client_metrics):
                    with pytest.raises(grpc.RpcError) as refused:
                        call(opened)
                    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # Reflection, through grpcurl: with -plaintext, -insecure (any certificate) and -cacert (this one).
    for how, allowed in ((["-plaintext"], plaintext_ok), (["-insecure"], tls_ok),
                         (["-cacert", str(certificate)], tls_ok)):
        listed = _grpcurl(server, *how)
        if allowed:
            assert listed.returncode == 0, listed.stderr
            assert set(listed.stdout.split()) >= {"apache.rocketmq.v2.MessagingService", "rmqproxy.admin.v1.Admin",
                                                  "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                                                  "opentelemetry.proto.collector.metrics.v1.MetricsService"}
        else:
            assert listed.returncode != 0
    assert health(server.address, None if plaintext_ok else certificate) == SERVING


def test_grpcurl_with_cacert_checks_the_certificate(servers: dict[str, ServerProcess]) -> None:
    stranger = _grpcurl(servers["permissive"], "-cacert", str(cert_path(servers["enforcing"])))
    assert stranger.returncode != 0 and "certificate" in stranger.stderr


def _cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rmqproxy", "--server", server.address, *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_the_admin_command_speaks_tls_with_tls_and_ca(servers: dict[str, ServerProcess]) -> None:
    permissive, enforcing, disabled = servers["permissive"], servers["enforcing"], servers["disabled"]
    created = _cli(enforcing, "--ca", str(cert_path(enforcing)), "topic", "create", "tls-admin")
    assert created.returncode == 0, created.stderr
    listed = _cli(enforcing, "--tls", "--ca", str(cert_path(enforcing)), "topic", "list", "--json")
    assert "tls-admin" in listed.stdout
    assert _cli(permissive, "--ca", str(cert_path(permissive)), "topic", "list").returncode == 0
    assert _cli(permissive, "topic", "list").returncode == 0

    plaintext = _cli(enforcing, "topic", "list")
    assert plaintext.returncode == 1 and "cannot reach a server" in plaintext.stderr
    untrusted = _cli(permissive, "--tls", "topic", "list")  # the system's roots do not know a self-signed one
    assert untrusted.returncode == 1
    assert "the server's certificate is not trusted: give it with --ca FILE" in untrusted.stderr
    no_tls = _cli(disabled, "--ca", str(cert_path(permissive)), "topic", "list")
    assert no_tls.returncode == 1 and "the server does not speak TLS" in no_tls.stderr
    missing = _cli(permissive, "--ca", "/nonexistent/ca.pem", "topic", "list")
    assert missing.returncode == 1 and missing.stderr.strip() == "rmqproxy: cannot read /nonexistent/ca.pem: " \
        "No such file or directory"


@pytest.mark.parametrize("mode", ["permissive", "disabled"])
def test_handlers_see_the_clients_own_address(servers: dict[str, ServerProcess], mode: str) -> None:
    server = servers[mode]
    group = f"peer-{mode}"
    assert _cli(server, "group", "create", group).returncode == 0
    with channel(server.address) as opened:
        stub = rpc_grpc.MessagingServiceStub(opened)  # type: ignore[no-untyped-call]
        request = rpc.HeartbeatRequest(group=pb.Resource(name=group), client_type=pb.ClientType.SIMPLE_CONSUMER)
        assert stub.Heartbeat(request, timeout=10, metadata=(("x-mq-client-id", group),)).status.code == pb.Code.OK
        ours = {f"{c.laddr.ip.removeprefix('::ffff:')}:{c.laddr.port}" for c in psutil.Process().net_connections("tcp")
                if c.raddr and c.raddr.port == server.port and c.status == psutil.CONN_ESTABLISHED}
    described = server.cli_json("group", "describe", group)
    addresses = {c["address"] for c in described["consumers"] if c["client_id"] == group}
    assert len(addresses) == 1 and addresses <= ours, (addresses, ours)


def _low_open_files_limit() -> None:
    """In the child: a soft limit below the hard one, so the server has a limit to raise (and log)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


def _serve_again(server: ServerProcess, tmp_path: Path, *args: str) -> tuple[int, list[str], float]:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port",
                             str(server.port), "--metrics-port", "0", "--console-port", "0",
                             "--data-dir", str(tmp_path / "other"),
                             *args],
                            capture_output=True, text=True, cwd=REPO, timeout=60, preexec_fn=_low_open_files_limit)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return result.returncode, lines, time.monotonic() - began


@pytest.mark.parametrize("mode", MODES)
def test_a_second_server_on_a_port_in_use_fails_at_once_with_one_line(
        servers: dict[str, ServerProcess], tmp_path: Path, mode: str) -> None:
    server = servers[mode]
    for store in ("rocksdb", "memory"):
        code, lines, took = _serve_again(server, tmp_path, "--tls-mode", mode, "--store", store)
        assert code == 1
        assert lines == [f"rmqproxy: port {server.port} is already in use on 127.0.0.1 (by another rmqproxy or "
                         "another program); stop that or choose another --port"]
        assert took < 20  # it does not wait for the store's lock or anything else
    assert not (tmp_path / "other").exists()  # refused before touching its data directory
    roots = None if mode != "enforcing" else cert_path(server)
    assert health(server.address, roots) == SERVING


@pytest.mark.parametrize("mode", MODES)
def test_a_port_taken_by_another_program_fails_at_once(tmp_path: Path, mode: str) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        occupied = ServerProcess(tmp_path / "unused", tmp_path / "unused.log", port=port)
        code, lines, _ = _serve_again(occupied, tmp_path, "--tls-mode", mode)
    assert code == 1 and len(lines) == 1 and re.search(rf"port {port} is already in use", lines[0])


def test_the_open_files_limit_is_raised_to_the_hard_limit_at_start(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip(f"the hard limit on open files is {hard}: nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the server
    try:
        server = ServerProcess(tmp_path / "data", tmp_path / "server.log", extra_args=("--store", "memory")).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert server.process is not None
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(hard), str(hard)]
        assert f"open files limit raised from 1024 to {hard}" in server.log()
    finally:
        assert server.stop() == 0
