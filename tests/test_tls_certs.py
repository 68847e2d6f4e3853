"""The serving certificate from outside: files given with --tls-cert/--tls-key (a chain), picked up
again on SIGHUP and by the periodic check without a restart, a broken replacement ignored, the
self-signed one kept across restarts, and unusable files refused at start with one line."""

from __future__ import annotations

import datetime
import ipaddress
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.serverproc import REPO, ServerProcess
from tests.tls_support import LogMark, cert_path, channel, health, logged_fingerprint, served_fingerprint

SERVING = 1


class Authority:
    """A private certificate authority issuing server certificates for loopback."""

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rmqproxy test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256()))
        self.path = directory / "ca.pem"
        self.path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, cert_file: Path, key_file: Path) -> str:
        """Write a new leaf (chain: leaf, then this CA) and its key; the leaf's SHA-256 fingerprint."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rmqproxy test server")]))
            .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, self.certificate))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        cert_file.write_bytes(chain)
        return leaf.fingerprint(hashes.SHA256()).hex(":").upper()


def _eventually(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


@pytest.mark.parametrize("mode", ["permissive", "enforcing"])
def test_given_files_are_served_and_reloaded_on_sighup(server_with: Callable[..., ServerProcess], tmp_path: Path,
                                                      authority: Authority, mode: str) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    first = authority.issue(cert, key)
    server = server_with("--tls-mode", mode, "--tls-cert", str(cert), "--tls-key", str(key), "--store", "memory")
    assert logged_fingerprint(server) == first == served_fingerprint(server.port)
    assert not cert_path(server).exists()  # no self-signed one is made
    assert health(server.address, authority.path) == SERVING
    assert health(f"localhost:{server.port}", authority.path) == SERVING

    with channel(server.address, authority.path) as kept:  # a connection made with the old certificate
        stub = health_pb2_grpc.HealthStub(kept)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
        second = authority.issue(cert, key)
        mark = LogMark(server)
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        assert _eventually(lambda: served_fingerprint(server.port) == second)
        assert any(f"TLS certificate reloaded from {cert}: SHA-256 fingerprint {second}" in line
                   for line in mark.lines())
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING
    assert health(server.address, authority.path) == SERVING

    mark = LogMark(server)
    server.process.send_signal(signal.SIGHUP)
    assert _eventually(lambda: any("is unchanged" in line for line in mark.lines()))


def test_changed_files_are_picked_up_without_a_signal(server_with: Callable[..., ServerProcess], tmp_path: Path,
                                                      authority: Authority) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    authority.issue(cert, key)
    server = server_with("--tls-cert", str(cert), "--tls-key", str(key), "--tls-reload", "500ms", "--store", "memory")
    renewed = authority.issue(cert, key)
    assert _eventually(lambda: served_fingerprint(server.port) == renewed)
    assert logged_fingerprint(server) == renewed


def test_a_broken_replacement_keeps_the_current_certificate(server_with: Callable[..., ServerProcess],
                                                            tmp_path: Path, authority: Authority) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    current = authority.issue(cert, key)
    server = server_with("--tls-cert", str(cert), "--tls-key", str(key), "--store", "memory")
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated")
    mark = LogMark(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    assert _eventually(lambda: any("keeping the current certificate" in line for line in mark.lines()))
    assert served_fingerprint(server.port) == current
    assert health(server.address, authority.path) == SERVING


def test_the_self_signed_certificate_survives_a_restart(server_with: Callable[..., ServerProcess]) -> None:
    server = server_with()
    made = logged_fingerprint(server)
    assert "made a self-signed TLS certificate" in server.log()
    server.restart()
    assert logged_fingerprint(server) == made == served_fingerprint(server.port)
    assert "using the self-signed TLS certificate" in server.log().split("----- restart -----")[1]
    assert health(server.address, cert_path(server)) == SERVING


def test_sighup_without_tls_is_logged_not_fatal(server_with: Callable[..., ServerProcess]) -> None:
    server = server_with("--tls-mode", "disabled", "--store", "memory")
    mark = LogMark(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)
    assert _eventually(lambda: any("SIGHUP: no certificate to reload" in line for line in mark.lines()))
    assert health(server.address) == SERVING


def _serve(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    result = subprocess.run([sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", "0",
                             "--metrics-port", "0", "--console-port", "0", "--data-dir", str(tmp_path / "data"),
                             "--store", "memory", *args],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    return result.returncode, [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def test_unusable_certificate_files_stop_the_server_with_one_line(tmp_path: Path, authority: Authority) -> None:
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    authority.issue(cert, key)
    other = tmp_path / "other.key"
    authority.issue(tmp_path / "other.pem", other)
    assert _serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other)) == (1, [
        f"rmqproxy: the key in {other} does not belong to the first certificate in {cert}"])
    assert _serve(tmp_path, "--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key)) == (1, [
        f"rmqproxy: cannot read {tmp_path / 'nope.pem'}: No such file or directory"])
    code, lines = _serve(tmp_path, "--tls-cert", str(cert))
    assert code == 2 and lines == ["rmqproxy: --tls-cert and --tls-key go together"]
