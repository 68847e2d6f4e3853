"""The listening front's pieces on their own: telling TLS from HTTP/2, client addresses behind the
relay, certificates (made, read, checked, reloaded) and the port check."""

from __future__ import annotations

import asyncio
import datetime
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rmqproxy.listen import ports
from rmqproxy.listen.certs import (
    CertificateError,
    CertificateSource,
    ensure_self_signed,
    host_names,
    load_pair,
    make_self_signed,
)
from rmqproxy.listen.peers import PeerTable, format_peer
from rmqproxy.listen.relay import PREFACE, Kind, classify

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
CLIENT_HELLO_HEAD = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])


@pytest.mark.parametrize(("head", "kind"), [
    (b"", None),
    (CLIENT_HELLO_HEAD[:3], None),
    (CLIENT_HELLO_HEAD + b"\x00\x01\xfc\x03\x03", Kind.TLS),
    (bytes([0x16, 0x03, 0x01, 0x00, 0x10, 0x02]), Kind.UNKNOWN),  # a handshake record, not a ClientHello
    (bytes([0x16, 0x47, 0x45, 0x54, 0x20, 0x2f]), Kind.UNKNOWN),
    (PREFACE[:10], None),
    (PREFACE, Kind.PLAINTEXT),
    (PREFACE + b"\x00\x00\x12\x04", Kind.PLAINTEXT),
    (b"PRI * HTTP/1.1\r\n", Kind.UNKNOWN),
    (b"GET / HTTP/1.1\r\n", Kind.UNKNOWN),
    (b"\x00", Kind.UNKNOWN),
])
def test_classify_tells_tls_from_http2_from_anything_else(head: bytes, kind: Kind | None) -> None:
    assert classify(head) is kind


def test_format_peer_prints_addresses_as_grpc_does() -> None:
    assert format_peer(("10.1.2.3", 5000)) == "10.1.2.3:5000"
    assert format_peer(("::1", 5000, 0, 0)) == "[::1]:5000"
    assert format_peer(("::ffff:10.1.2.3", 5000, 0, 0)) == "10.1.2.3:5000"  # IPv4 on a dual-stack socket
    assert format_peer("/tmp/socket") == "/tmp/socket"


def test_peer_table_maps_the_relay_address_back_to_the_client() -> None:
    peers = PeerTable()
    assert peers.resolve("127.0.0.1:40000") == "127.0.0.1:40000"
    peers.add("127.0.0.1:40000", "[2001:db8::7]:61000")
    assert peers.resolve("127.0.0.1:40000") == "[2001:db8::7]:61000"
    assert peers.resolve("127.0.0.2:40000") == "127.0.0.2:40000"  # another local caller, same port
    peers.remove("127.0.0.1:40000")
    assert peers.resolve("127.0.0.1:40000") == "127.0.0.1:40000" and len(peers) == 0


def test_a_self_signed_certificate_names_loopback_and_this_machine(tmp_path: Path) -> None:
    names = host_names(["broker.example", "0.0.0.0", "[::]", "10.0.0.5"])
    assert names[:3] == ["localhost", "127.0.0.1", "::1"]
    assert socket.gethostname() in names and "broker.example" in names and "10.0.0.5" in names
    assert "0.0.0.0" not in names and "::" not in names
    cert, key, made = ensure_self_signed(tmp_path / "tls", names, NOW)
    assert made and cert == tmp_path / "tls" / "cert.pem"
    assert key.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    pair = load_pair(cert, key)
    assert set(pair.names) == set(names)
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    assert pair.fingerprint == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert len(pair.fingerprint) == 32 * 3 - 1
    assert pair.not_after > NOW + datetime.timedelta(days=3000)


def test_the_self_signed_certificate_is_kept_until_it_nears_its_end(tmp_path: Path) -> None:
    cert, key, _ = ensure_self_signed(tmp_path, ["localhost"], NOW)
    first = load_pair(cert, key)
    assert ensure_self_signed(tmp_path, ["localhost"], NOW + datetime.timedelta(days=365))[2] is False
    assert load_pair(cert, key) == first
    assert ensure_self_signed(tmp_path, ["localhost"], NOW + datetime.timedelta(days=3640))[2] is True
    assert load_pair(cert, key).fingerprint != first.fingerprint


def test_a_broken_self_signed_pair_is_made_anew(tmp_path: Path) -> None:
    cert, key, _ = ensure_self_signed(tmp_path, ["localhost"], NOW)
    key.write_bytes(b"not a key")
    assert ensure_self_signed(tmp_path, ["localhost"], NOW)[2] is True
    load_pair(cert, key)


def _issue(issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name, subject: str,
           key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW)
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_a_chain_is_read_leaf_first_and_a_key_must_match_the_leaf(tmp_path: Path) -> None:
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "test CA")])
    ca = _issue(ca_key, ca_name, "test CA", ca_key, True)
    leaf = _issue(ca_key, ca_name, "server", leaf_key, False)
    (tmp_path / "chain.pem").write_bytes(_pem(leaf, ca))
    (tmp_path / "key.pem").write_bytes(_key_pem(leaf_key))
    pair = load_pair(tmp_path / "chain.pem", tmp_path / "key.pem")
    assert pair.fingerprint == leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    (tmp_path / "ca-key.pem").write_bytes(_key_pem(ca_key))
    with pytest.raises(CertificateError, match="does not belong to the first certificate"):
        load_pair(tmp_path / "chain.pem", tmp_path / "ca-key.pem")
    with pytest.raises(CertificateError, match="cannot read"):
        load_pair(tmp_path / "missing.pem", tmp_path / "key.pem")
    with pytest.raises(CertificateError, match="no PEM certificate"):
        load_pair(tmp_path / "key.pem", tmp_path / "key.pem")
    with pytest.raises(CertificateError, match="no unencrypted PEM private key"):
        load_pair(tmp_path / "chain.pem", tmp_path / "chain.pem")


def test_reload_serves_changed_files_once_and_keeps_the_old_pair_when_the_new_one_is_broken(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    chain, private = make_self_signed(["localhost"], NOW)
    cert.write_bytes(chain)
    key.write_bytes(private)
    source = CertificateSource(cert, key)
    first = source.pair
    assert source.fetch() is None
    assert source.reload() is False  # nothing changed
    chain, private = make_self_signed(["localhost"], NOW)
    cert.write_bytes(chain)
    assert source.reload() is False  # the certificate without its key: a renewal caught halfway
    assert source.pair == first and source.fetch() is None
    key.write_bytes(private)
    assert source.reload() is True
    assert source.pair.fingerprint != first.fingerprint
    assert source.fetch() is not None and source.fetch() is None  # gRPC gets the new one once
    assert source.reload(force=True) is False  # the same pair again


def test_check_free_refuses_a_port_that_anything_listens_on() -> None:
    # A listener with SO_REUSEPORT, the way gRPC listens: binding with it too would share the port.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ports.PortInUse, match=f"port {port} is already in use"):
            ports.check_free("127.0.0.1", port)
        with pytest.raises(ports.PortInUse):
            ports.check_free("0.0.0.0", port)  # the wildcard overlaps it too
    ports.check_free("127.0.0.1", port)
    ports.check_free("127.0.0.1", 0)


def test_listen_shares_the_port_with_own_workers_but_check_free_sees_it_taken() -> None:
    sockets = ports.listen("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    try:
        with pytest.raises(ports.PortInUse):
            ports.check_free("127.0.0.1", port)
        worker = ports.listen("127.0.0.1", port)  # a worker of the same server skips the check
        for sock in worker:
            sock.close()
    finally:
        for sock in sockets:
            sock.close()


async def test_connections_accepted_on_the_listen_sockets_send_small_writes_at_once() -> None:
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP: without it, relayed
    # replies waited for the client's delayed ACK (40 ms per receive at concurrency 1).
    sockets = ports.listen("127.0.0.1", 0)
    assert all(sock.proto == socket.IPPROTO_TCP for sock in sockets)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Probe, sock=sockets[0])
    with socket.create_connection(sockets[0].getsockname()[:2]):
        assert await asyncio.wait_for(accepted, 10) != 0
    server.close()
