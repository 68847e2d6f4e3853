"""The web console (docs/console.md): server-rendered pages over the admin API, served by
rmqproxy/console/server.py. This module stays light (no aiohttp): the supervisor and the start-up
check the console port before anything else is imported."""

from __future__ import annotations

from rmqproxy.listen import ports


def check_free(host: str, port: int) -> None:
    """PortInUse (one line naming --console-port) if something listens on the console port."""
    try:
        ports.check_free(host, port)
    except ports.PortInUse:
        raise ports.PortInUse(f"console port {port} is already in use on {host}; choose another --console-port, "
                              "or 0 to serve no console") from None
