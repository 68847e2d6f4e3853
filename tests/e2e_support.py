"""Shared by the end-to-end modules that run one real server per module (grpcurl, bad input).

:func:`shared_server` is conftest's ``server`` fixture with module scope: the server must not
have logged a traceback and must exit 0 on SIGTERM when the module is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serverproc import ServerProcess


@contextmanager
def shared_server(directory: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(directory / "data", directory / "server.log").start(timeout=60)
    try:
        yield proc
    finally:
        code = proc.stop() if proc.process is not None else 0
    log = proc.log()
    assert "Traceback" not in log, f"the server logged an exception:\n{log[-6000:]}"
    assert code == 0, f"server exited with {code} on SIGTERM:\n{log[-3000:]}"


def max_offsets_total(description: dict[str, object]) -> int:
    """Sum of the max offsets in ``rmqproxy topic describe --json`` output: messages stored."""
    queues = description["queues"]
    assert isinstance(queues, list)
    return sum(int(q["max_offset"]) for q in queues)
