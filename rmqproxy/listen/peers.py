"""Real client addresses behind the permissive relay.

gRPC sees a relayed connection coming from the relay's own loopback address. Before forwarding a
connection's first byte, the relay records the client's address under that loopback address (host
and port, as gRPC prints them), so that no call can arrive on it before its entry exists; the entry
goes when the connection closes. ``rmqproxy/context.py`` looks every caller's address up here; an
address that is not a relayed connection is its own answer.
"""

from __future__ import annotations

import ipaddress


class PeerTable:
    def __init__(self) -> None:
        self._clients: dict[str, str] = {}

    def add(self, relay_address: str, client: str) -> None:
        self._clients[relay_address] = client

    def remove(self, relay_address: str) -> None:
        self._clients.pop(relay_address, None)

    def resolve(self, address: str) -> str:
        """The client behind ``address`` (a caller's host:port as gRPC saw it)."""
        return self._clients.get(address, address) if self._clients else address

    def __len__(self) -> int:
        return len(self._clients)


def format_peer(sockname: object) -> str:
    """A socket address the way gRPC prints peers (without its ipv4:/ipv6: prefix): "1.2.3.4:5",
    "[::1]:5"; an IPv4 client reaching a dual-stack socket is shown as IPv4."""
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return str(sockname)
    host, port = str(sockname[0]), sockname[1]
    if ":" in host:
        try:
            mapped = ipaddress.IPv6Address(host.split("%", 1)[0]).ipv4_mapped
        except ValueError:
            mapped = None
        return f"{mapped}:{port}" if mapped is not None else f"[{host}]:{port}"
    return f"{host}:{port}"
