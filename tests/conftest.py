"""Fixtures shared by the test suite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess

_names = itertools.count()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on a free port with a fresh data directory.

    At teardown it must stop cleanly on SIGTERM and must not have logged a traceback: an
    unexpected exception anywhere in the server fails the test that provoked it."""
    proc = ServerProcess(tmp_path / "data", tmp_path / "server.log").start()
    yield proc
    code = proc.stop() if proc.process is not None else 0
    log = proc.log()
    assert "Traceback" not in log, f"the server logged an exception:\n{log[-6000:]}"
    assert code == 0, f"server exited with {code} on SIGTERM:\n{log[-3000:]}"


@pytest.fixture
def name() -> str:
    """A fresh resource name per call site (topics and groups need 3-64 characters)."""
    return f"res-{next(_names):04d}"
