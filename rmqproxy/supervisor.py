"""``serve --workers N``: N gRPC worker processes on one port, one store process, one supervisor.

::

    supervisor (this module: no event loop, no gRPC)
      |- store process   storage/store_server.py: opens the store, answers every worker over a Unix
      |                  socket in a private directory, relays the workers' bus notices
      |- worker 1..N     rmqproxy/app.py with ``store_socket`` set: the whole server (TLS front,
                         gRPC, broker) on the shared port, its store a StoreClient

A networked store (Redis Cluster) needs no store process: it is already shared by processes on
other machines, so each worker opens its own connection to it and is one more node of the
cluster, as far as the store, its bus (pub/sub) and its leases can tell; the supervisor then only
runs the workers.

The port is the server's alone: the supervisor checks it is free (storage/listen/ports.py) and
keeps a socket bound to it with SO_REUSEPORT, not listening, for its whole life. Workers bind
with SO_REUSEPORT beside it (the kernel spreads connections over the listening ones); a stranger's
check, which binds without SO_REUSEPORT, keeps failing, so a second ``rmqproxy serve`` on the same
port still refuses to start, even in the moment a worker is being replaced.

The supervisor restarts a worker that dies, and the store process in place if it dies (workers
reconnect; the calls in flight fail, nothing acknowledged is lost), each at most
``RESTARTS_PER_MINUTE`` times a minute before it gives up and stops everything. On SIGTERM or
SIGINT it drains: each worker stops accepting, finishes its calls in flight (up to the grace
period) and exits; then the store process closes the store. Every child dies with the supervisor
(PR_SET_PDEATHSIG), so a SIGKILLed supervisor leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rmqproxy.config import ServerConfig
from rmqproxy.listen import ports
from storage.base import MessageStore
from storage.errors import StoreError
from storage.malloc import release_large_buffers
from storage.registry import describe, parse_store

log = logging.getLogger("rmqproxy.supervisor")

MAX_DEFAULT_WORKERS = 8
RESTARTS_PER_MINUTE = 5
START_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """The number of cores, at most MAX_DEFAULT_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def networked(config: ServerConfig) -> bool:
    """Whether the store is shared over the network (each worker connects to it: no store process)."""
    return parse_store(config.store).backend == "redis"


def _reach(config: ServerConfig) -> None:
    """Connect to a networked store once and let go; StoreOpenFailed if it does not answer."""
    import asyncio

    from storage.redis import open_redis_store, parse_location

    async def reach() -> None:
        addresses, namespace = parse_location(parse_store(config.store).location or "")
        store = await open_redis_store(addresses, namespace=namespace, retries=config.redis_retries)
        await store.close()

    asyncio.run(reach())


def _opener(config: ServerConfig) -> Callable[[], MessageStore]:
    spec = parse_store(config.store)
    if spec.backend == "rocksdb":
        from storage.rocksdb import RocksDBStore
        return functools.partial(RocksDBStore, spec.location or config.data_dir)
    if spec.backend == "memory":
        from storage.memory import MemoryStore
        return MemoryStore
    from storage.registry import StoreOptions, open_store
    open_store(spec, StoreOptions(data_dir=config.data_dir))  # its own error, if it has one
    raise StoreError(f"--workers above 1 runs the store in a process of its own: not possible for {spec}")


def _worker_main(config: ServerConfig, event_loop: str, log_level: int, ready: Any) -> None:
    """A worker process: the whole server on the shared port, its store the store process."""
    _die_with_parent()
    release_large_buffers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop
    logging.basicConfig(level=log_level,
                        format=f"%(asctime)s %(levelname)s %(name)s[w{config.worker_index}]: %(message)s")
    from rmqproxy.app import run
    try:
        if event_loop == "uvloop":
            import uvloop
            uvloop.run(run(config, ready=ready))
        else:
            import asyncio
            asyncio.run(run(config, ready=ready))
    except Exception as exc:
        log.error("worker %d: %s", config.worker_index, exc)
        sys.exit(1)


@dataclasses.dataclass
class _Child:
    process: Any
    restarts: deque[float] = dataclasses.field(default_factory=deque)

    def may_restart(self, now: float) -> bool:
        while self.restarts and now - self.restarts[0] > 60:
            self.restarts.popleft()
        return len(self.restarts) < RESTARTS_PER_MINUTE


class Supervisor:
    def __init__(self, config: ServerConfig, event_loop: str = "uvloop") -> None:
        self.config = config
        self.event_loop = event_loop
        self.context = multiprocessing.get_context("spawn")
        self.dir = tempfile.mkdtemp(prefix="rmqproxy-")
        os.chmod(self.dir, 0o700)
        self.socket_path = os.path.join(self.dir, "store.sock")
        self.placeholders: list[socket.socket] = []
        self.store: _Child | None = None
        self.workers: dict[int, _Child] = {}
        self.stopping = False
        self.started = False
        """Set once the port is claimed and the store is open (or, networked, needs no process)."""

    # -- starting -------------------------------------------------------------------------------

    def _claim_port(self) -> int:
        """Check the port is free and keep it ours (a bound, non-listening SO_REUSEPORT socket);
        port 0 becomes one free port."""
        ports.check_free(self.config.host, self.config.port)
        if self.config.metrics_port:  # worker i (1..N) serves metrics on --metrics-port + i - 1
            from rmqproxy.metrics import http as metrics_http

            for index in range(self.config.workers):
                metrics_http.check_free(self.config.host, self.config.metrics_port + index)
        if self.config.console_port:  # served by worker 1 (rmqproxy/app.py console_port_of)
            from rmqproxy.console import check_free as check_console_free

            check_console_free(self.config.console_host, self.config.console_port)
        port = self.config.port
        for family, address in ports.addresses(self.config.host, port):
            sock = ports._socket(family, reuse_port=True)
            sock.bind((address[0], port))
            port = sock.getsockname()[1]
            self.placeholders.append(sock)
        return port

    def _start_store(self) -> _Child:
        parent, child = self.context.Pipe(duplex=False)
        from storage.process_executor import LOCK_WAIT_S
        from storage.store_server import serve
        process = self.context.Process(target=serve, name="rmqproxy-store", daemon=False, args=(
            self.socket_path, _opener(self.config), logging.getLogger().level, LOCK_WAIT_S, child))
        process.start()
        child.close()
        try:
            if not parent.poll(START_TIMEOUT_S):
                raise StoreError("the store process did not open the store in time")
            ok, value = parent.recv()
        except (EOFError, OSError) as exc:
            process.join(5)
            raise StoreError(f"the store process ended while opening the store (exit code {process.exitcode})") \
                from exc
        finally:
            parent.close()
        if not ok:
            process.join(5)
            raise value
        return _Child(process)

    def _start_worker(self, index: int) -> tuple[_Child, Any]:
        """Start worker ``index``; the child and the pipe end on which it says it is ready."""
        parent, child = self.context.Pipe(duplex=False)
        socket_path = None if networked(self.config) else self.socket_path  # networked: its own connection
        config = dataclasses.replace(self.config, store_socket=socket_path, worker_index=index)
        process = self.context.Process(target=_worker_main, name=f"rmqproxy-worker-{index}", daemon=False,
                                       args=(config, self.event_loop, logging.getLogger().level, child))
        process.start()
        child.close()
        log.info("worker %d is process %d", index, process.pid)
        return _Child(process), parent

    def _await_ready(self, index: int, ready: Any) -> None:
        process = self.workers[index].process
        try:
            if not ready.poll(START_TIMEOUT_S):
                raise StoreError(f"worker {index} did not start in time")
            ready.recv()
        except (EOFError, OSError):
            process.join(5)
            raise StoreError(f"worker {index} ended while starting (exit code {process.exitcode})") from None
        finally:
            ready.close()

    # -- running --------------------------------------------------------------------------------

    def run(self) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = signal.set_wakeup_fd(wake_write.fileno())

        def stop(signum: int, frame: object) -> None:
            self.stopping = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        signal.signal(signal.SIGHUP, self._forward_hup)
        try:
            port = self._claim_port()
            self.config = dataclasses.replace(self.config, port=port)
            if not networked(self.config):
                self.store = self._start_store()
            else:
                _reach(self.config)  # a cluster nobody runs: one line here, not one per worker
            self.started = True
            if self.config.tls_mode != "disabled":
                # Made or checked once here, so a bad certificate is one line and workers never race
                # to make the self-signed one.
                from rmqproxy.app import listen_settings
                from rmqproxy.listen.front import _certificates
                _certificates(listen_settings(self.config))
            if self.store is not None:
                log.info("store process %d opened %s", self.store.process.pid,
                         describe(parse_store(self.config.store), _options(self.config)))
            # All at once: each takes seconds to import and start, and they need nothing of each other.
            readiness = {}
            for index in range(1, self.config.workers + 1):
                self.workers[index], readiness[index] = self._start_worker(index)
            for index, ready in readiness.items():
                self._await_ready(index, ready)
            if not self.stopping:
                store = (f"store process {self.store.process.pid}" if self.store is not None
                         else f"each connected to {describe(parse_store(self.config.store), _options(self.config))}")
                log.info("rmqproxy listening on %s:%d (%d workers sharing the port, %s, supervisor %d)",
                         self.config.host, port, len(self.workers), store, os.getpid())
            code = self._watch(wake_read)
        finally:
            self._shutdown()
            signal.set_wakeup_fd(previous)
            for sock in (wake_read, wake_write, *self.placeholders):
                sock.close()
            shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def _forward_hup(self, signum: int, frame: object) -> None:
        """SIGHUP reloads the certificate: every worker does it."""
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(worker.process.pid, signal.SIGHUP)

    def _watch(self, wakeup: socket.socket) -> int:
        while not self.stopping:
            sentinels = {w.process.sentinel: i for i, w in self.workers.items()}
            if self.store is not None:
                sentinels[self.store.process.sentinel] = 0
            ready = multiprocessing.connection.wait([*sentinels, wakeup])
            if wakeup in ready:
                with contextlib.suppress(OSError):
                    wakeup.recv(4096)
            if self.stopping:
                break
            now = time.monotonic()
            if self.store is not None and not self.store.process.is_alive():
                self.store.process.join()
                log.error("the store process died (exit code %s)", self.store.process.exitcode)
                if not self.store.may_restart(now):
                    log.critical("the store process died %d times within a minute; stopping", RESTARTS_PER_MINUTE)
                    return 1
                restarts = self.store.restarts
                self.store = self._start_store()
                self.store.restarts = restarts
                self.store.restarts.append(now)
                log.info("store process %d opened %s again; the workers reconnect", self.store.process.pid,
                         describe(parse_store(self.config.store), _options(self.config)))
            for index, worker in list(self.workers.items()):
                if worker.process.is_alive():
                    continue
                worker.process.join()
                log.error("worker %d (process %d) died (exit code %s)", index, worker.process.pid,
                          worker.process.exitcode)
                if not worker.may_restart(now):
                    log.critical("worker %d died %d times within a minute; stopping", index, RESTARTS_PER_MINUTE)
                    return 1
                restarts = worker.restarts
                self.workers[index], ready = self._start_worker(index)
                ready.close()  # it joins the others when it is ready; nobody waits for it here
                self.workers[index].restarts = restarts
                restarts.append(now)
        return 0

    def _shutdown(self) -> None:
        """Drain the workers (SIGTERM: each finishes its calls in flight), then close the store."""
        if not self.started:
            return  # nothing started (the port was taken, the store would not open): the error says it all
        if self.workers:  # otherwise starting failed, and the error says it all
            log.info("stopping %d workers", len(self.workers))
        for worker in self.workers.values():
            if worker.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    worker.process.terminate()
        deadline = time.monotonic() + self.config.grace_seconds + 10
        for worker in self.workers.values():
            worker.process.join(max(deadline - time.monotonic(), 0.1))
            if worker.process.is_alive():
                log.error("worker process %d did not stop; killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join(5)
        if self.store is not None and self.store.process.is_alive():
            self.store.process.terminate()
            self.store.process.join(30)
            if self.store.process.is_alive():
                log.error("the store process did not stop; killing it")
                self.store.process.kill()
                self.store.process.join(5)
        if self.workers:
            log.info("stopped")


def _options(config: ServerConfig) -> Any:
    from storage.registry import StoreOptions
    return StoreOptions(data_dir=config.data_dir)


def serve(config: ServerConfig, event_loop: str) -> int:
    """Run the supervisor until SIGTERM; the exit code."""
    return Supervisor(config, event_loop).run()
