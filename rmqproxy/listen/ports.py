"""The public port: is it free, and the listening sockets the permissive front accepts on.

gRPC binds with SO_REUSEPORT by default, and Linux lets any number of sockets with that option
(and the same user) share a port, so a second server on a taken port would start and silently split
the clients with the first. Before anything listens, :func:`check_free` binds each address WITHOUT
SO_REUSEPORT (with SO_REUSEADDR, so connections of a previous run lingering in TIME_WAIT do not
count): that fails if anything at all listens there, another rmqproxy included. Then the server
binds WITH SO_REUSEPORT, so that worker processes of the same server, which skip the check, can
later share the port; strangers that run the check still cannot. The window between the check and
the bind is a few milliseconds at start.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096


class PortInUse(OSError):
    """The port is taken: the server must not start."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.EADDRINUSE


def is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "[::]", "*")


def addresses(host: str, port: int) -> list[tuple[int, tuple[str, int]]]:
    """(family, address) pairs to bind for ``host``, the way gRPC binds them: a wildcard host is one
    dual-stack IPv6 socket (IPv4 only where the machine has no IPv6); a name is each of its addresses."""
    if is_wildcard(host):
        if socket.has_dualstack_ipv6():
            return [(socket.AF_INET6, ("::", port))]
        return [(socket.AF_INET, ("0.0.0.0", port))]
    found: list[tuple[int, tuple[str, int]]] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE):
        entry = (int(family), (str(sockaddr[0]), int(sockaddr[1])))
        if entry not in found:
            found.append(entry)
    return found


def _socket(family: int, *, reuse_port: bool) -> socket.socket:
    # proto named explicitly: asyncio turns TCP_NODELAY on only for sockets whose proto is
    # IPPROTO_TCP, and accepted sockets inherit it (with 0, relayed replies waited for delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    except OSError:
        sock.close()
        raise
    return sock


def check_free(host: str, port: int) -> None:
    """PortInUse if anything listens on ``host:port`` (port 0, any free port, is always free)."""
    if port == 0:
        return
    for family, address in addresses(host, port):
        with _socket(family, reuse_port=False) as probe:
            try:
                probe.bind(address)
            except OSError as exc:
                shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(f"port {port} is already in use on {shown} (by another rmqproxy or another "
                                    "program); stop that or choose another --port") from None
                raise OSError(f"cannot listen on {shown}:{port}: {exc.strerror}") from None


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on ``host:port`` with SO_REUSEPORT (call :func:`check_free` first); a port
    of 0 becomes one free port shared by all the addresses."""
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses(host, port):
            sock = _socket(family, reuse_port=True)
            sockets.append(sock)
            sock.bind((address[0], port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
            port = sock.getsockname()[1]
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sockets


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft limit on open files to the hard limit (each connection is a file; idle
    consumers hold theirs for good): (old, new) if it changed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return None
    return soft, hard
