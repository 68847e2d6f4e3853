"""For tests of ``serve --workers N``: which process is which, and connections pinned to a worker.

The kernel spreads connections over the workers (SO_REUSEPORT), so a test that needs a client on
worker 1 and another on worker 2 opens connections until each lands where it must, and finds
where one landed from /proc: the server side of the TCP connection (local port = the server's,
remote port = ours) is a socket inode, and exactly one worker has a file descriptor on it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import grpc

from tests.serverproc import ServerProcess

WORKER_LINE = re.compile(r"worker (\d+) is process (\d+)")
STORE_LINE = re.compile(r"store process (\d+) opened")
LEASE_LINE = re.compile(r"\[w(\d+)\]: this process runs (.+?) now")


def workers(server: ServerProcess) -> dict[int, int]:
    """worker index -> pid, as the supervisor last logged them."""
    return {int(i): int(pid) for i, pid in WORKER_LINE.findall(server.log())}


def store_pid(server: ServerProcess) -> int:
    return int(STORE_LINE.findall(server.log())[-1])


def lease_holder(server: ServerProcess, job: str, timeout: float = 20) -> int:
    """The worker that last took the lease of ``job`` (e.g. "timers")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [int(i) for i, name in LEASE_LINE.findall(server.log()) if name == job]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no worker took the lease of {job}:\n{server.log()[-3000:]}")


def _tcp_table() -> list[tuple[int, int, int]]:
    """(local port, remote port, inode) of every TCP socket in this network namespace."""
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            rows.append((int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), inode))
    return rows


def _socket_inodes(pid: int | str) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def my_ports(server_port: int) -> set[int]:
    """Local ports of this process's connections to ``server_port``."""
    mine = _socket_inodes("self")
    return {local for local, remote, inode in _tcp_table() if remote == server_port and inode in mine}


def worker_of(server: ServerProcess, client_port: int) -> int | None:
    """The worker whose socket is the server side of our connection from ``client_port``."""
    server_side = {inode for local, remote, inode in _tcp_table() if local == server.port and remote == client_port}
    for index, pid in workers(server).items():
        if _socket_inodes(pid) & server_side:
            return index
    return None


def pinned_channel(server: ServerProcess, worker: int, *, credentials: grpc.ChannelCredentials | None = None,
                   target: str | None = None, options: tuple[tuple[str, Any], ...] = (),
                   attempts: int = 60) -> grpc.Channel:
    """A channel whose (one) connection landed on ``worker``; the others tried are closed."""
    target = target or server.address
    opts = [("grpc.use_local_subchannel_pool", 1), *options]
    for _ in range(attempts):
        before = my_ports(server.port)
        channel = (grpc.secure_channel(target, credentials, options=opts) if credentials is not None
                   else grpc.insecure_channel(target, options=opts))
        grpc.channel_ready_future(channel).result(timeout=10)
        new = my_ports(server.port) - before
        if len(new) == 1 and worker_of(server, next(iter(new))) == worker:
            return channel
        channel.close()
    raise AssertionError(f"no connection landed on worker {worker} in {attempts} tries")
