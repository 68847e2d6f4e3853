"""What listens on the public port, in each TLS mode, and how it is opened and closed.

=============  ====================================================================================
mode           the public port
=============  ====================================================================================
``disabled``   gRPC's plaintext listener, nothing in front.
``enforcing``  gRPC's TLS listener (ALPN h2), nothing in front: plaintext clients fail their handshake.
``permissive`` the relay (``relay.py``): TLS connections go to a gRPC TLS listener on loopback,
               plaintext ones to a gRPC plaintext listener on loopback, anything else is closed.
=============  ====================================================================================

Every service of the server (MessagingService, the admin API, the client-metrics receiver,
reflection, health) is registered on the one gRPC server, so all of them follow the mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from rmqproxy.listen import TlsMode, ports
from rmqproxy.listen.certs import CertificateSource, ensure_self_signed, host_names
from rmqproxy.listen.peers import PeerTable
from rmqproxy.listen.relay import PermissiveFront, Upstreams

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ListenSettings:
    host: str
    port: int
    tls_mode: TlsMode = "permissive"
    cert_file: Path | None = None
    key_file: Path | None = None
    self_signed_dir: Path | None = None
    """Where the self-signed certificate is kept when no files are given (``<data-dir>/tls``)."""
    extra_names: tuple[str, ...] = ()
    """Host names the self-signed certificate names besides loopback and this machine's."""
    reload_seconds: float = 60.0
    """How often certificate files are checked for changes (0: only on SIGHUP)."""
    handshake_timeout: float = 10.0
    """Seconds a new connection has to show what it speaks (and, on TLS, to finish its handshake)."""


def grpc_options(settings: ListenSettings) -> list[tuple[str, int]]:
    """gRPC server options the listening front needs."""
    return [("grpc.server_handshake_timeout_ms", int(settings.handshake_timeout * 1000))]


@dataclass
class Front:
    settings: ListenSettings
    port: int
    """The public port (the one asked for, or the one chosen for port 0)."""
    certificates: CertificateSource | None = None
    relay: PermissiveFront | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _reload_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """After the gRPC server started: accept on the public port (permissive), watch the certificate."""
        if self.relay is not None:
            await self.relay.serve(self._sockets)
            self._sockets = []
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            # Also without TLS: SIGHUP's default action would end the server.
            loop.add_signal_handler(signal.SIGHUP, self.reload_now)
        if self.certificates is not None and self.settings.reload_seconds > 0:
            self._reload_task = loop.create_task(self._reload_every(self.settings.reload_seconds))

    def reload_now(self) -> None:
        if self.certificates is None:
            log.info("SIGHUP: no certificate to reload (--tls-mode disabled)")
        elif not self.certificates.reload(force=True):
            log.info("SIGHUP: the TLS certificate in %s is unchanged", self.certificates.cert_path)

    async def _reload_every(self, seconds: float) -> None:
        assert self.certificates is not None
        while True:
            await asyncio.sleep(seconds)
            self.certificates.reload()

    def describe(self) -> str:
        """The mode and certificate, for the start-up line."""
        if self.certificates is None:
            return "TLS disabled"
        what = "TLS and plaintext" if self.settings.tls_mode == "permissive" else "TLS only"
        return f"{what}, certificate {self.certificates.cert_path}"

    async def close(self) -> None:
        """Stop accepting new connections (the gRPC server then ends the open ones)."""
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
            self._reload_task = None
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.relay is not None:
            await self.relay.close()
        for sock in self._sockets:
            sock.close()
        self._sockets = []


def _certificates(settings: ListenSettings) -> CertificateSource:
    if settings.cert_file is not None and settings.key_file is not None:
        source = CertificateSource(settings.cert_file, settings.key_file)
        log.info("TLS certificate %s: SHA-256 fingerprint %s, valid until %s", settings.cert_file,
                 source.pair.fingerprint, source.pair.not_after.date())
        return source
    assert settings.self_signed_dir is not None
    names = host_names(settings.extra_names)
    cert, key, made = ensure_self_signed(settings.self_signed_dir, names, datetime.datetime.now(datetime.UTC))
    source = CertificateSource(cert, key)
    log.info("%s self-signed TLS certificate %s for %s: SHA-256 fingerprint %s (clients that verify "
             "certificates must trust this file)", "made a" if made else "using the", cert,
             ", ".join(source.pair.names), source.pair.fingerprint)
    return source


def open_front(server: grpc.aio.Server, settings: ListenSettings, peers: PeerTable) -> Front:
    """Add the listeners ``settings`` ask for to ``server`` (before it starts); call
    :func:`ports.check_free` first. The permissive relay records its clients in ``peers``. OSError
    (or CertificateError) when something cannot be opened."""
    mode = settings.tls_mode
    address = f"{settings.host}:{settings.port}" if ":" not in settings.host else f"[{settings.host}]:{settings.port}"
    if mode == "disabled":
        return Front(settings, _grpc_port(server.add_insecure_port, address))
    certificates = _certificates(settings)
    if mode == "enforcing":
        port = _grpc_port(lambda a: server.add_secure_port(a, certificates.credentials()), address)
        return Front(settings, port, certificates=certificates)
    plaintext = _grpc_port(server.add_insecure_port, f"{LOOPBACK}:0")
    tls = _grpc_port(lambda a: server.add_secure_port(a, certificates.credentials()), f"{LOOPBACK}:0")
    sockets = ports.listen(settings.host, settings.port)
    relay = PermissiveFront(Upstreams((LOOPBACK, plaintext), (LOOPBACK, tls)), peers, settings.handshake_timeout)
    front = Front(settings, sockets[0].getsockname()[1], certificates=certificates, relay=relay)
    front._sockets = list(sockets)
    return front


def _grpc_port(add: object, address: str) -> int:
    try:
        port: int = add(address)  # type: ignore[operator]
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    return port
