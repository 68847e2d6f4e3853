"""The serving certificate: read from PEM files, or made self-signed on first start; reloaded when
its files change.

Where it comes from: ``--tls-cert`` / ``--tls-key`` (PEM; the certificate file may hold a chain,
leaf first), or else ``<data-dir>/tls/cert.pem`` and ``key.pem``, made self-signed the first time
the server starts (also with ``--store memory``, which otherwise leaves the data directory alone)
and kept, so a client told to trust it keeps trusting it across restarts. The self-signed one names
localhost, 127.0.0.1, ::1, this machine's host names and the addresses the server listens on and
advertises, so clients that check host names accept it.

Reloading: gRPC asks :meth:`CertificateSource.fetch` at every TLS handshake (on one of its own
threads) whether there is a new certificate; the answer is prepared on the event loop by
:meth:`CertificateSource.reload` (on SIGHUP, and every ``--tls-reload`` interval), which re-reads the
files only when their size, time or inode changed and keeps the current pair when the new one does
not load. Connections already open keep the certificate they were made with.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

SELF_SIGNED_DAYS = 3650
RENEW_BEFORE = datetime.timedelta(days=30)
"""A self-signed certificate this close to its end is made anew at start."""


class CertificateError(Exception):
    """A certificate or key that cannot be used (the message says which file and why)."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate chain and its private key, checked to belong together."""

    chain_pem: bytes
    key_pem: bytes
    fingerprint: str
    """SHA-256 of the leaf certificate (DER), as ``openssl x509 -fingerprint -sha256`` prints it."""
    names: tuple[str, ...]
    """The leaf's subject alternative names."""
    not_after: datetime.datetime


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def load_pair(cert_path: Path, key_path: Path) -> KeyPair:
    """Read and check a PEM certificate chain and key; CertificateError if they are not usable."""
    try:
        chain_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise CertificateError(f"{cert_path} holds no PEM certificate ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{key_path} holds no unencrypted PEM private key ({exc})") from exc
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (leaf.public_key().public_bytes(serialization.Encoding.DER, public)
            != key.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise CertificateError(f"the key in {key_path} does not belong to the first certificate in {cert_path}")
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(str(n.value) for n in sans)
    except x509.ExtensionNotFound:
        names = ()
    return KeyPair(chain_pem, key_pem, fingerprint(leaf), names, leaf.not_valid_after_utc)


def host_names(extra: Iterable[str] = ()) -> list[str]:
    """Names and addresses a self-signed certificate should cover: loopback, this machine, ``extra``."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn(), *extra]
    unique = []
    for name in names:
        name = name.strip("[]")
        if name and name not in ("0.0.0.0", "::") and name not in unique:
            unique.append(name)
    return unique


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_self_signed(names: Iterable[str], now: datetime.datetime) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for ``names`` (PEM certificate, PEM key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rmqproxy self-signed"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rmqproxy")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        # Its own trust anchor: clients that verify are given this file as their root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def ensure_self_signed(directory: Path, names: Iterable[str], now: datetime.datetime) -> tuple[Path, Path, bool]:
    """The self-signed pair kept in ``directory``, made when missing, unreadable or about to expire:
    (certificate path, key path, whether it was made now)."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    try:
        pair = load_pair(cert_path, key_path)
        if pair.not_after - now > RENEW_BEFORE:
            return cert_path, key_path, False
        log.info("the self-signed certificate in %s expires %s: making a new one", directory, pair.not_after)
    except CertificateError as exc:
        if cert_path.exists() or key_path.exists():
            log.warning("making a new self-signed certificate: %s", exc)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    chain_pem, key_pem = make_self_signed(names, now)
    _write_atomically(key_path, key_pem, 0o600)  # the key first: a certificate never lacks its key
    _write_atomically(cert_path, chain_pem, 0o644)
    return cert_path, key_path, True


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


class CertificateSource:
    """The current key pair for gRPC's TLS listeners, and its reloading."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self._stamps = (_stamp(cert_path), _stamp(key_path))
        self.pair = load_pair(cert_path, key_path)
        self._pending: grpc.ServerCertificateConfiguration | None = None

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.pair.key_pem, self.pair.chain_pem)])

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that follow reloads (grpc's dynamic TLS credentials; ALPN h2 included)."""
        # grpc takes None from the fetcher as "no change"; its type stubs do not say so.
        return grpc.dynamic_ssl_server_credentials(self._configuration(), self.fetch)  # type: ignore[arg-type]

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each TLS handshake, on its own thread: a new configuration once."""
        pending, self._pending = self._pending, None
        return pending

    def reload(self, *, force: bool = False) -> bool:
        """Re-read the files if they changed (or ``force``); True if a new pair is now served."""
        stamps = (_stamp(self.cert_path), _stamp(self.key_path))
        if stamps == self._stamps and not force:
            return False
        try:
            pair = load_pair(self.cert_path, self.key_path)
        except CertificateError as exc:
            # Often a renewal caught halfway (certificate written, key not yet): try again next time.
            log.error("keeping the current certificate: %s", exc)
            return False
        self._stamps = stamps
        if pair == self.pair:
            return False
        self.pair = pair
        self._pending = self._configuration()
        log.info("TLS certificate reloaded from %s: SHA-256 fingerprint %s, valid until %s", self.cert_path,
                 pair.fingerprint, pair.not_after.date())
        return True
