"""Opening a data directory whose lock another process holds: fail at once, or wait for it to go.

RocksDB locks ``<data dir>/LOCK`` with a POSIX record lock, so the kernel can say which process
holds it (``F_GETLK``). Two cases look alike from RocksDB's error and must not be treated alike:

* a running server holds the directory: waiting is pointless, the answer is one clear line now,
  naming the process;
* the holder is on its way out (a store process killed with its server a moment ago: SIGKILL
  pending, exiting, or a zombie): its lock goes with it, so opening waits for it to end (woken
  by the kernel through a pidfd, not by polling), up to a deadline.

When the holder cannot be known (no /proc, another PID namespace), opening retries until the
deadline, as it always did.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from storage.errors import StoreOpenFailed

T = TypeVar("T")

ProcessState = Literal["alive", "exiting", "gone", "unknown"]

_FLOCK = struct.Struct("@hhqqi")
_FLOCK_SIZE = 32  # sizeof(struct flock) on 64-bit Linux: the kernel writes this much
_PF_EXITING = 0x4
_SIGKILL_BIT = 1 << (9 - 1)
_RETRY_S = 0.05
"""Pause between attempts when the holder cannot be watched (unknown, or no pidfd)."""


def lock_holder(data_dir: str) -> int | None:
    """The pid of the process holding ``data_dir``'s RocksDB lock: None if nobody holds it, 0 if
    it is held by a process this one cannot see (another PID namespace)."""
    try:
        fd = os.open(os.path.join(data_dir, "LOCK"), os.O_RDONLY)
    except OSError:
        return None
    try:
        query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0).ljust(_FLOCK_SIZE, b"\0")
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    finally:
        # Closing drops every POSIX lock *this* process holds on the file: callers only ask
        # after failing to take it, so there is none to lose.
        os.close(fd)
    lock_type, _, _, _, pid = _FLOCK.unpack_from(answer)
    if lock_type == fcntl.F_UNLCK:
        return None
    return max(int(pid), 0)


def process_state(pid: int) -> ProcessState:
    """Whether ``pid`` is running, on its way out (exiting, zombie, SIGKILL pending) or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open(f"/proc/{pid}/status", "rb") as status:
            lines = status.read().splitlines()
    except FileNotFoundError:
        return "gone"
    except OSError:
        return "unknown"
    state, flags = fields[0], int(fields[6])
    if state in (b"Z", b"X", b"x") or flags & _PF_EXITING:
        return "exiting"
    for line in lines:
        name, _, value = line.partition(b":")
        if name in (b"SigPnd", b"ShdPnd") and int(value.strip(), 16) & _SIGKILL_BIT:
            return "exiting"
    return "alive"


STORE_PROCESS_NAME = "rmqproxy-store"
"""What a store process calls itself (storage/process_executor.py), in ps and /proc/PID/comm."""


def describe_process(pid: int) -> str:
    """``pid`` with its command line, shortened, for an error message; a store process is named by
    the server it belongs to."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            if comm.read().strip() == STORE_PROCESS_NAME.encode():
                with open(f"/proc/{pid}/stat", "rb") as stat:
                    parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
                return f"the store process {pid} of {describe_process(parent)}"
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return f"process {pid}"
    command = " ".join(" ".join(w.decode(errors="replace") for w in words if w).split())
    return f"process {pid} ({command[:100]})" if command else f"process {pid}"


def wait_for_exit(pid: int, timeout_s: float) -> None:
    """Return when ``pid`` has ended or ``timeout_s`` passed, woken by the kernel (pidfd) where it
    can; otherwise after a short pause."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        time.sleep(min(_RETRY_S, max(timeout_s, 0)))
        return
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(max(0, int(timeout_s * 1000)))
    finally:
        os.close(pidfd)


def open_locked(opener: Callable[[], T], lock_wait_s: float, *,
                holder: Callable[[str], int | None] = lock_holder,
                state: Callable[[int], ProcessState] = process_state,
                wait: Callable[[int, float], None] = wait_for_exit) -> T:
    """``opener()``, failing at once with the holder named if a live process holds the data
    directory's lock, and waiting (up to ``lock_wait_s``) only while the holder is going away."""
    deadline = time.monotonic() + lock_wait_s
    released = 0
    while True:
        try:
            return opener()
        except StoreOpenFailed as exc:
            message = str(exc).lower()
            if "lock" not in message:
                raise
            if "by current process" in message:
                raise StoreOpenFailed(exc.path, "the data directory is already open in this process") from None
            pid = holder(exc.path)
            found: ProcessState = "gone" if pid is None else "unknown" if pid == 0 else state(pid)
            if found == "alive" and pid is not None:
                raise StoreOpenFailed(exc.path, f"the data directory is in use by {describe_process(pid)}; "
                                      "stop it or choose another data directory") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            released = released + 1 if found == "gone" else 0
            if pid and found == "exiting":
                wait(pid, remaining)
            elif found == "unknown" or released > 1:
                time.sleep(min(_RETRY_S, remaining))
            # Otherwise the holder is gone (or the lock was released meanwhile): try again at once.
