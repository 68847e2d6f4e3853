"""The servers a benchmark run measures, each started and stopped by the run itself on loopback:

* ``rmqproxy``: ``rmqproxy serve`` on the embedded RocksDB store, ``--flush sync`` (a send is
  acknowledged once its write-ahead log record is fsynced), in its default TLS mode (permissive:
  the load generator speaks plaintext through the server's relay);
* ``rmqproxy-async``: the same with ``--flush async`` (acknowledged once written to the OS);
* ``rmqproxy-workers2``: ``--workers 2``: two gRPC worker processes on the port, one store process;
* ``rmqproxy-redis``: one node on the Redis Cluster store, a private 3+3 cluster on loopback;
* ``rmqproxy-disabled``: ``--tls-mode disabled`` (plaintext straight into gRPC, no relay);
* ``rmqproxy-tls``: the default server, the load generator speaking TLS through the relay;
* ``rmqproxy-enforcing``: ``--tls-mode enforcing``, TLS straight into gRPC's own TLS listener;
* ``rmqproxy-asyncio``: the default server on asyncio's own event loop instead of uvloop;
* ``rmqproxy-metrics``: the default server with ``--metrics-port`` on (every other target runs with
  ``--metrics-port 0``), to show what metrics cost;
* ``rmqproxy-notrace``: the default server with ``--trace off``, to show what message traces cost;
* ``rmqproxy-auth``: the default server with ``--auth``, the load signed by a Normal user whose
  ACL entries are prefix rules (authentication and authorization on every call);
* ``rmqproxy-nogather``: the default server with ``--receive-gather 0ms`` (a woken long poll answers
  at once, as before gathering), to show what gathering does;
* ``echo``: ``benchmarks/echo.py``, gRPC and nothing else: the limit;
* ``nats``: NATS JetStream, FILE storage (``benchmarks/peers.py``);
* ``rabbitmq``: RabbitMQ, durable queues, persistent messages, publisher confirms;
* ``rocketmq``: Apache RocketMQ itself, a name server and a proxy in Local mode (broker in the proxy's
  JVM), ASYNC_FLUSH (its default); ``rocketmq-sync`` the same with SYNC_FLUSH
  (``benchmarks/rocketmq_peer.py``; not in the default set).

Also the sampler of a server's CPU and memory (its whole process tree: RabbitMQ runs under a
shell script and epmd).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil

from benchmarks.harness import Server, aio_channel, free_port
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as admin
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as admin_grpc

TARGETS = ("rmqproxy", "rmqproxy-async", "rmqproxy-thread", "rmqproxy-workers2", "rmqproxy-redis",
           "rmqproxy-redis2", "rmqproxy-redis3", "rmqproxy-redis-w2", "rmqproxy-redis-all",
           "rmqproxy-disabled", "rmqproxy-tls", "rmqproxy-enforcing", "rmqproxy-asyncio", "rmqproxy-metrics",
           "rmqproxy-auth", "rmqproxy-nogather", "rmqproxy-notrace", "rmqproxy-trace", "echo", "echo-uvloop",
           "echo-thread", "echo-process", "echo-generic", "nats", "rabbitmq",
           "rocketmq", "rocketmq-sync")
DEFAULT_TARGETS = ("rmqproxy", "rmqproxy-async", "echo", "nats", "rabbitmq")
DESCRIPTIONS = {
    "rmqproxy": "rmqproxy, RocksDB, --flush sync (fsync before the answer), default --tls-mode permissive, "
                "plaintext load through the relay",
    "rmqproxy-async": "rmqproxy, RocksDB, --flush async (written to the OS before the answer)",
    "rmqproxy-thread": "rmqproxy, RocksDB, --flush sync, --store-thread (the store on a thread, not a process)",
    "rmqproxy-workers2": "rmqproxy, RocksDB, --flush sync, --workers 2 (two gRPC worker processes, one store process)",
    "rmqproxy-redis": "rmqproxy on a private Redis Cluster on loopback (3 primaries, 3 replicas, appendfsync "
                      "always), one node; the server's CPU and memory only, not Redis's",
    "rmqproxy-redis2": "two rmqproxy nodes (one worker each) on one private Redis Cluster as above; the load spread "
                       "over them (gRPC round robin); CPU: both nodes, not Redis",
    "rmqproxy-redis3": "three rmqproxy nodes on one private Redis Cluster, as rmqproxy-redis2",
    "rmqproxy-redis-w2": "one rmqproxy node with --workers 2 on a private Redis Cluster (each worker its own "
                         "cluster connection)",
    "rmqproxy-redis-all": "rmqproxy-redis, its CPU and memory counting the six Redis servers too (minus "
                          "rmqproxy-redis: what Redis spends per message)",
    "rmqproxy-disabled": "rmqproxy as above with --tls-mode disabled: plaintext straight into gRPC",
    "rmqproxy-tls": "rmqproxy as above (permissive), the load over TLS through the relay",
    "rmqproxy-enforcing": "rmqproxy as above with --tls-mode enforcing: TLS straight into gRPC",
    "rmqproxy-asyncio": "rmqproxy as above (permissive, plaintext load) on asyncio's event loop, not uvloop",
    "rmqproxy-metrics": "rmqproxy as the first, with Prometheus metrics on (--metrics-port, scraped every 5 s; "
                        "the others run with --metrics-port 0)",
    "rmqproxy-auth": "rmqproxy as above with --auth: every call signed by a Normal user, checked against its ACLs",
    "rmqproxy-nogather": "rmqproxy as the first with --receive-gather 0ms: a woken long poll answers at once",
    "rmqproxy-notrace": "rmqproxy as the first with --trace off (the default: the same as rmqproxy unless it says "
                        "--trace on)",
    "rmqproxy-trace": "rmqproxy as the first with --trace on (message traces recorded)",
    "echo": "bare grpc.aio echo of apache.rocketmq.v2 (stores nothing)",
    "echo-uvloop": "the echo on uvloop (rmqproxy's event loop)",
    "echo-thread": "the echo on uvloop, each send waiting once for a worker thread (as for --store-thread)",
    "echo-generic": "the echo on uvloop, its service registered as a generic handler only (as rmqproxy's)",
    "echo-process": "the echo on uvloop, each send waiting once for a child process over a socket pair "
                    "(as for the store process)",
    "nats": "NATS JetStream, file storage, explicit acks (fsync in the background)",
    "rabbitmq": "RabbitMQ, durable queue, persistent messages, publisher confirms, manual acks",
    "rocketmq": "Apache RocketMQ, name server + proxy in Local mode (broker in the proxy's JVM), ASYNC_FLUSH "
                "(its default: the commit log is flushed in the background); settings below",
    "rocketmq-sync": "Apache RocketMQ as above with SYNC_FLUSH (the commit log flushed before the answer)",
}


ECHO_ARGS = {"echo": (), "echo-uvloop": ("--loop", "uvloop"), "echo-thread": ("--loop", "uvloop", "--hop", "thread"),
             "echo-process": ("--loop", "uvloop", "--hop", "process"),
             "echo-generic": ("--loop", "uvloop", "--generic")}
"""The echo targets and their ``python -m benchmarks.echo`` options."""

REDIS_NODES = {"rmqproxy-redis": 1, "rmqproxy-redis2": 2, "rmqproxy-redis3": 3, "rmqproxy-redis-w2": 1,
               "rmqproxy-redis-all": 1}
"""The targets on a private Redis Cluster, and how many rmqproxy nodes each runs on it."""


def missing(target: str) -> str | None:
    """Why ``target`` cannot run on this machine, or None."""
    if target == "nats" and shutil.which("nats-server") is None:
        return "nats-server is not installed (make bench-deps)"
    if target.startswith("rmqproxy-redis") and shutil.which("redis-server") is None:
        return "redis-server is not installed (make redis)"
    if target == "rabbitmq":
        from benchmarks.peers import RABBIT_BIN

        if not Path(RABBIT_BIN).exists():
            return "rabbitmq-server is not installed (make bench-deps)"
    if target.startswith("rocketmq"):
        from benchmarks import rocketmq_peer

        return rocketmq_peer.missing()
    return None


@dataclass
class Running:
    name: str
    kind: str
    """The driver kind: rmqproxy (also for echo), nats or rabbitmq."""
    address: str
    pid: int
    stop: Callable[[], None]
    prepare: Callable[[Sequence[str], Sequence[str], int], None]
    """Create topics (with this many queues each) and consumer groups."""
    tls_ca: str | None = None
    """Connect over TLS, trusting this PEM file (rmqproxy's self-signed certificate)."""
    credentials: tuple[str, str] | None = None
    """Sign every call as this (access key, secret key) (rmqproxy-auth)."""
    others: tuple[int, ...] = ()
    """More server processes measured with ``pid`` (the other nodes of a cluster)."""


def rmqproxy_prepare(address: str, tls_ca: str | None = None) -> Callable[[Sequence[str], Sequence[str], int], None]:
    def prepare(topics: Sequence[str], groups: Sequence[str], queues: int) -> None:
        asyncio.run(_admin_create(address, topics, groups, queues, tls_ca=tls_ca))

    return prepare


async def _admin_create(address: str, topics: Sequence[str], groups: Sequence[str], queues: int,
                        parallel: int = 64, tls_ca: str | None = None) -> None:
    """Through the admin API, many at a time (10,000 topics one CLI call each would take minutes)."""
    async with aio_channel(address, tls_ca) as channel:
        stub = admin_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
        requests: list[object] = [admin.CreateTopicRequest(name=t, type=admin.NORMAL, queues=queues) for t in topics]
        requests += [admin.CreateGroupRequest(name=g) for g in groups]
        limit = asyncio.Semaphore(parallel)

        async def one(request: object) -> None:
            async with limit:
                try:
                    if isinstance(request, admin.CreateTopicRequest):
                        await stub.CreateTopic(request, timeout=60)
                    else:
                        await stub.CreateGroup(request, timeout=60)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # prepared before: fine
                        raise

        await asyncio.gather(*(one(r) for r in requests))


SCRAPE_INTERVAL_S = 5.0
"""How often the rmqproxy-metrics target is scraped while it runs (Prometheus' default is 15 s)."""


def _scraping(port: int, stop_server: Callable[[], None]) -> Callable[[], None]:
    """Scrape http://127.0.0.1:PORT/metrics every SCRAPE_INTERVAL_S on a thread, as Prometheus
    would; the returned function stops that, then the server."""
    import urllib.request

    stopping = threading.Event()

    def scrape() -> None:
        while not stopping.wait(SCRAPE_INTERVAL_S):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                    answer.read()
            except OSError as exc:
                print(f"metrics scrape failed: {exc}", file=sys.stderr)

    thread = threading.Thread(target=scrape, name="scrape", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()
        stop_server()

    return stop


def start(name: str, workdir: Path, *, server_args: Sequence[str] = (), jvm_warmup: float = 0.0) -> Running:
    """Start ``name`` with its data under ``workdir`` (created). ``jvm_warmup``: seconds of throwaway load
    a JVM target (Apache RocketMQ) gets before it is measured, so that the figures are those of its
    just-in-time compiled code, as in a broker that has been up for a while."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name in REDIS_NODES:
        from tests.redis_cluster import start_cluster

        cluster = start_cluster(workdir / "redis")
        workers = ("--workers", "2") if name == "rmqproxy-redis-w2" else ()
        servers = []
        for index in range(REDIS_NODES[name]):
            data = workdir / f"data{index}"
            data.mkdir(exist_ok=True)
            servers.append(Server(data, ("--store", cluster.url, *workers, *server_args)).start())

        def stop_both() -> None:
            for server in servers:
                server.stop()
            cluster.stop()

        redis_pids = tuple(n.process.pid for n in cluster.nodes if n.process is not None)
        # Several nodes: one gRPC target naming them all, spread by round robin (benchmarks/drivers.py).
        address = servers[0].address if len(servers) == 1 else "ipv4:" + ",".join(s.address for s in servers)
        others = tuple(s.pid() for s in servers[1:]) + (redis_pids if name == "rmqproxy-redis-all" else ())
        return Running(name, "rmqproxy", address, servers[0].pid(), stop_both, rmqproxy_prepare(servers[0].address),
                       others=others)
    if name.startswith("rmqproxy"):
        flush = "async" if name == "rmqproxy-async" else "sync"
        extra = {"rmqproxy-thread": ("--store-thread",), "rmqproxy-workers2": ("--workers", "2"),
                 "rmqproxy-disabled": ("--tls-mode", "disabled"),
                 "rmqproxy-enforcing": ("--tls-mode", "enforcing"),
                 "rmqproxy-asyncio": ("--event-loop", "asyncio"),
                 "rmqproxy-nogather": ("--receive-gather", "0ms"),
                 "rmqproxy-metrics": ("--metrics-port", str(free_port())),
                 "rmqproxy-notrace": ("--trace", "off"),
                 "rmqproxy-trace": ("--trace", "on")}.get(name, ())
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        if name == "rmqproxy-auth":
            from benchmarks.auth_target import auth_server

            return auth_server(name, data, ("--flush", flush, *server_args))
        server = Server(data, ("--flush", flush, *extra, *server_args)).start()
        # The server's self-signed certificate, made at its first start.
        tls_ca = str(data / "tls" / "cert.pem") if name in ("rmqproxy-tls", "rmqproxy-enforcing") else None
        stop = server.stop
        if name == "rmqproxy-metrics":
            stop = _scraping(int(extra[1]), server.stop)
        return Running(name, "rmqproxy", server.address, server.pid(), stop,
                       rmqproxy_prepare(server.address, tls_ca), tls_ca)
    if name in ECHO_ARGS:
        from benchmarks.echo import EchoServer

        echo = EchoServer(workdir / f"{name}.log", ECHO_ARGS[name]).start()
        assert echo.process is not None
        return Running(name, "rmqproxy", f"127.0.0.1:{echo.port}", echo.process.pid, echo.stop,
                       lambda topics, groups, queues: None)
    if name == "nats":
        from benchmarks.peers import NatsServer, nats_setup

        nats = NatsServer(workdir / "nats").start()

        def nats_prepare(topics: Sequence[str], groups: Sequence[str], queues: int) -> None:
            for group in groups:
                asyncio.run(nats_setup(nats.address, list(topics), group))

        return Running(name, "nats", nats.address, nats.pid(), nats.stop, nats_prepare)
    if name == "rabbitmq":
        from benchmarks.peers import RabbitServer, rabbit_setup

        rabbit = RabbitServer(workdir / "rabbitmq").start()

        def rabbit_prepare(topics: Sequence[str], groups: Sequence[str], queues: int) -> None:
            for group in groups:
                asyncio.run(rabbit_setup(rabbit.address, list(topics), group))

        return Running(name, "rabbitmq", rabbit.address, rabbit.pid(), rabbit.stop, rabbit_prepare)
    if name in ("rocketmq", "rocketmq-sync"):
        from benchmarks.rocketmq_admin import create_group, create_topic
        from benchmarks.rocketmq_peer import ApacheRocketMQ

        apache = ApacheRocketMQ(workdir / "rocketmq", "SYNC_FLUSH" if name == "rocketmq-sync" else "ASYNC_FLUSH")
        apache.start()

        def apache_prepare(topics: Sequence[str], groups: Sequence[str], queues: int) -> None:
            for topic in topics:
                create_topic(apache.broker_address, topic, queues)
            for group in groups:
                create_group(apache.broker_address, group)

        running = Running(name, "rocketmq", apache.address, apache.pid(), apache.stop, apache_prepare)
        if jvm_warmup > 0:
            _warm_up(running, jvm_warmup)
        return running
    raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")


def _warm_up(server: Running, seconds: float) -> None:
    """Throwaway load on a topic of its own: single and batched sends, receives and acks."""
    from benchmarks.drivers import Target
    from benchmarks.load import Workload, run_load

    topics, group = ("warmup-t0",), "warmup-g"
    server.prepare(topics, [group], 8)
    target = Target(server.kind, server.address, topics, group, 1024, server.tls_ca)
    for kind, share in (("e2e", 0.7), ("send-batch", 0.3)):
        run_load(target, Workload(kind, 16, seconds * share, 0.0), label=f"{server.name} JVM warm-up {kind}")


@dataclass
class Usage:
    cpu_percent: float
    """Average over the span, in percent of one core (200 = two cores busy)."""
    peak_rss: int
    """Largest resident set seen in the span (bytes, the whole process tree)."""


@dataclass
class Sampler:
    """CPU time and resident memory of a process and its descendants, sampled every ``interval``
    seconds in a thread; ``usage(a, b)`` reads the span between two wall-clock times afterwards."""

    pid: int
    others: tuple[int, ...] = ()
    """More process trees counted with ``pid``'s (the other nodes of a cluster)."""
    interval: float = 0.2
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    """(wall-clock time, CPU seconds used so far, RSS bytes)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _known: dict[int, psutil.Process] = field(default_factory=dict)
    _cpu_of_gone: float = 0.0
    _cpu_seen: dict[int, float] = field(default_factory=dict)

    def _tree(self) -> list[psutil.Process]:
        found = []
        for pid in (self.pid, *self.others):
            try:
                root = self._known.setdefault(pid, psutil.Process(pid))
                found += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        # The same Process objects each time: psutil checks a pid was not reused through them.
        return [self._known.setdefault(p.pid, p) for p in found]

    def sample(self) -> tuple[float, float, int]:
        cpu, rss = 0.0, 0
        alive = set()
        for process in self._tree():
            try:
                times = process.cpu_times()
                used = times.user + times.system + times.children_user + times.children_system
                rss += process.memory_info().rss
            except psutil.Error:
                continue
            alive.add(process.pid)
            self._cpu_seen[process.pid] = used
            cpu += used
        for pid in [p for p in self._cpu_seen if p not in alive]:
            self._cpu_of_gone += self._cpu_seen.pop(pid)  # a child that exited keeps its share
        taken = (time.time(), cpu + self._cpu_of_gone, rss)
        self.samples.append(taken)
        return taken

    def start(self) -> Sampler:
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def usage(self, begin: float, end: float) -> Usage:
        inside = [s for s in self.samples if begin <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= begin]
        after = [s for s in self.samples if s[0] >= end]
        first = before[-1] if before else self.samples[0]
        last = after[0] if after else self.samples[-1]
        cpu = 100.0 * (last[1] - first[1]) / max(1e-6, last[0] - first[0])
        peak = max(s[2] for s in [first, *inside, last])
        return Usage(cpu, peak)
