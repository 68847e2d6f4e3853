"""Apache RocketMQ itself on loopback: the benchmarks' reference peer and the behaviour oracle.

The jars come from Maven Central through ``benchmarks/rocketmq/pom.xml`` (``make peers`` copies
them, with their dependencies, into ``~/.cache/rmqproxy/rocketmq-<version>/lib``; nothing of
them is in the repository). A run starts

* a name server (``NamesrvStartup``) and
* a proxy in Local mode (``ProxyStartup -pm local``: the broker runs inside the proxy's JVM),

both under one small shell parent, so the sampler sees the whole of Apache RocketMQ as one process
tree, the way it sees rmqproxy and its store process. Every port is a free loopback port, the
store and the logs live in the run's own directory, and :data:`SETTINGS` lists every setting that
differs from Apache RocketMQ's defaults (the results print it). ``flush`` is ``ASYNC_FLUSH`` (the
broker's default) or ``SYNC_FLUSH`` (a send is answered after its commit log pages are flushed).

Topics and consumer groups are created through the broker's own remoting protocol (the requests
``mqadmin updateTopic`` and ``updateSubGroup`` send; see :mod:`benchmarks.rocketmq_admin`): one
JVM per mqadmin command takes 6-7 s here, which would cost minutes per run.

    python -m benchmarks.rocketmq_peer fetch          # copy the jars (what `make peers` runs)
    python -m benchmarks.rocketmq_peer serve          # start one, print its address, stop on Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import free_port

POM = Path(__file__).resolve().parent / "rocketmq" / "pom.xml"
READY = "rocketmq-proxy startup successfully"
CLUSTER = "DefaultCluster"
BROKER = "broker-a"


def version() -> str:
    """The Apache RocketMQ version the pom names (its one place)."""
    found = re.search(r"<rocketmq\.version>([^<]+)</rocketmq\.version>", POM.read_text())
    if found is None:
        raise RuntimeError(f"{POM} names no <rocketmq.version>")
    return found.group(1)


def cache_dir() -> Path:
    base = Path(os.environ.get("RMQ_CLIENT_CACHE") or Path.home() / ".cache" / "rmqproxy")
    return base / f"rocketmq-{version()}"


def lib_dir() -> Path:
    return cache_dir() / "lib"


def missing() -> str | None:
    """Why Apache RocketMQ cannot be started here, or None."""
    if shutil.which("java") is None:
        return "no Java runtime (apt-get install openjdk-17-jdk-headless)"
    lib = lib_dir()
    if not all((lib / f"rocketmq-{part}-{version()}.jar").exists() for part in ("proxy", "namesrv", "broker")):
        return f"Apache RocketMQ {version()} jars are not in {lib} (make peers)"
    return None


def fetch(quiet: bool = True) -> int:
    """Copy the jars into the cache with Maven: offline first (fast once ~/.m2 has them), then online."""
    if shutil.which("mvn") is None:
        print("rocketmq peer: no Maven (apt-get install maven), not fetched", file=sys.stderr)
        return 1
    base = ["mvn", "-B", "-f", str(POM), f"-Drocketmq.cache={cache_dir()}", "package"]
    if quiet:
        base.insert(1, "-q")
    offline = subprocess.run([*base, "-o"], capture_output=True)
    if offline.returncode == 0:
        return 0
    return subprocess.run(base).returncode


# JVM settings. Apache RocketMQ's own start scripts ask for 4-8 GiB heaps and 15 GiB of direct memory;
# this machine has 24 GiB and two cores shared with other work, so the heaps are small and the GC
# threads few. Nothing pre-touches the heap (-XX:+AlwaysPreTouch would make RSS the heap size).
NAMESRV_JVM = ("-server", "-Xms128m", "-Xmx256m", "-XX:+UseG1GC", "-XX:ParallelGCThreads=2",
               "-XX:ConcGCThreads=1", "-XX:-OmitStackTraceInFastThrow")
PROXY_JVM = ("-server", "-Xms512m", "-Xmx1g", "-XX:MaxDirectMemorySize=512m", "-XX:+UseG1GC",
             "-XX:G1HeapRegionSize=16m", "-XX:G1ReservePercent=25", "-XX:InitiatingHeapOccupancyPercent=30",
             "-XX:SoftRefLRUPolicyMSPerMB=0", "-XX:ParallelGCThreads=2", "-XX:ConcGCThreads=1",
             "-XX:-OmitStackTraceInFastThrow")


def settings(flush: str) -> dict[str, str]:
    """Every setting that differs from Apache RocketMQ's defaults, for the results."""
    return {
        "version": version(),
        "processes": "name server (NamesrvStartup) + proxy in Local mode (ProxyStartup -pm local, broker in the "
                     "proxy's JVM), under one shell parent",
        "name server JVM": " ".join(NAMESRV_JVM),
        "proxy+broker JVM": " ".join(PROXY_JVM),
        "flushDiskType": flush,
        "broker": f"brokerClusterName={CLUSTER} brokerName={BROKER} brokerId=0 brokerIP1=127.0.0.1 "
                  "bindAddress=127.0.0.1, storePathRootDir in the run's temporary directory; everything else "
                  "default (commit log 1 GiB segments, mmap, no transient store pool, autoCreateTopicEnable, "
                  "autoCreateSubscriptionGroup)",
        "proxy": "rmq-proxy.json: rocketMQClusterName, namesrvAddr, grpcServerPort, remotingListenPort, "
                 "proxyMode=local; gRPC TLS default (permissive: the load is plaintext); everything else default",
        "ports": "free loopback ports for the name server, gRPC, the proxy's remoting, the broker (listenPort, "
                 "listenPort-2, haListenPort); the proxy's gRPC port binds every interface (it has no bind "
                 "address setting), only loopback is used",
        "topics and groups": "created before each run through the broker's admin requests (what mqadmin "
                             "updateTopic -r Q -w Q and updateSubGroup send), message.type=NORMAL",
        "load generator": "the same raw apache.rocketmq.v2 driver as for rmqproxy, plus what every real client "
                          "does first: a Telemetry stream carrying SIMPLE_CONSUMER Settings (the proxy refuses "
                          "ReceiveMessage from a client whose settings it never saw)",
    }


def _ports_free(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _broker_port() -> int:
    """A broker listen port p with p-2 (its second remoting server) and p+1 (HA) free too."""
    for _ in range(100):
        port = free_port()
        if port > 1026 and _ports_free(port - 2, port + 1):
            return port
    raise RuntimeError("no free broker port triple found")


_PARENT = """
set -u
java $NAMESRV_JVM -cp "$RMQ_LIB/*" org.apache.rocketmq.namesrv.NamesrvStartup -c namesrv.properties \
    > namesrv.log 2>&1 &
ns=$!
trap 'kill -TERM $ns 2>/dev/null; wait $ns; exit 0' TERM INT
until grep -q "boot success" namesrv.log; do kill -0 $ns 2>/dev/null || exit 3; sleep 0.1; done
java $PROXY_JVM -cp "$RMQ_LIB/*" org.apache.rocketmq.proxy.ProxyStartup -pc rmq-proxy.json -bc broker.conf \
    -pm local > proxy.log 2>&1 &
px=$!
trap 'kill -TERM $px 2>/dev/null; wait $px; kill -TERM $ns 2>/dev/null; wait $ns; exit 0' TERM INT
wait
"""


@dataclass
class ApacheRocketMQ:
    """A name server and a Local-mode proxy (with its broker) under ``workdir``; ``stop()`` ends both."""

    workdir: Path
    flush: str = "ASYNC_FLUSH"
    grpc_port: int = field(default_factory=free_port)
    namesrv_port: int = field(default_factory=free_port)
    remoting_port: int = field(default_factory=free_port)
    broker_port: int = field(default_factory=_broker_port)
    broker_extra: dict[str, str] = field(default_factory=dict)
    """More broker.conf settings (the behaviour oracle shortens the transaction check timings)."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def broker_address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def namesrv_address(self) -> str:
        return f"127.0.0.1:{self.namesrv_port}"

    def _write_config(self) -> None:
        home = self.workdir
        (home / "namesrv.properties").write_text(f"listenPort={self.namesrv_port}\nbindAddress=127.0.0.1\n")
        (home / "broker.conf").write_text("\n".join([
            f"brokerClusterName={CLUSTER}", f"brokerName={BROKER}", "brokerId=0", "brokerIP1=127.0.0.1",
            "bindAddress=127.0.0.1", f"listenPort={self.broker_port}", f"haListenPort={self.broker_port + 1}",
            f"namesrvAddr={self.namesrv_address}", f"storePathRootDir={home / 'store'}",
            f"storePathCommitLog={home / 'store' / 'commitlog'}", f"flushDiskType={self.flush}",
            *(f"{key}={value}" for key, value in self.broker_extra.items()), ""]))
        (home / "rmq-proxy.json").write_text(
            f'{{"rocketMQClusterName": "{CLUSTER}", "namesrvAddr": "{self.namesrv_address}", '
            f'"grpcServerPort": {self.grpc_port}, "remotingListenPort": {self.remoting_port}, '
            f'"proxyMode": "local"}}\n')

    def start(self, timeout: float = 120) -> ApacheRocketMQ:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        env = dict(os.environ, ROCKETMQ_HOME=str(self.workdir), RMQ_LIB=str(lib_dir()),
                   NAMESRV_JVM=" ".join((*NAMESRV_JVM, f"-Duser.home={self.workdir}")),
                   PROXY_JVM=" ".join((*PROXY_JVM, f"-Duser.home={self.workdir}")))
        # user.home: Apache RocketMQ writes its logs under ~/logs/rocketmqlogs; here, into the run's directory.
        with open(self.workdir / "parent.log", "wb") as log:
            self.process = subprocess.Popen(["bash", "-c", _PARENT], cwd=self.workdir, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        proxy_log = self.workdir / "proxy.log"
        while time.monotonic() < deadline:
            if proxy_log.exists() and READY in proxy_log.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                self._collect_and_raise("exited")
            time.sleep(0.2)
        self.stop()
        self._collect_and_raise(f"did not start within {timeout:.0f} s")
        raise AssertionError  # unreachable

    def _collect_and_raise(self, what: str) -> None:
        logs = []
        for name in ("parent.log", "namesrv.log", "proxy.log"):
            path = self.workdir / name
            if path.exists():
                logs.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        raise RuntimeError(f"Apache RocketMQ {what}:\n" + "\n".join(logs))

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # the parent stops the proxy, then the name server
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # a JVM the parent did not reap (it exited early)
            os.killpg(self.process.pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rocketmq_peer", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="copy the Apache RocketMQ jars from Maven Central into the cache")
    get.add_argument("--verbose", action="store_true")
    serve = commands.add_parser("serve", help="start Apache RocketMQ on loopback until Ctrl-C")
    serve.add_argument("--flush", choices=("ASYNC_FLUSH", "SYNC_FLUSH"), default="ASYNC_FLUSH")
    serve.add_argument("--dir", type=Path, help="working directory (default: a new temporary one)")
    serve.add_argument("--topic", action="append", default=[], help="create this topic (8 queues); repeatable")
    serve.add_argument("--group", action="append", default=[], help="create this consumer group; repeatable")
    commands.add_parser("status", help="say whether Apache RocketMQ can be started here")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch(quiet=not args.verbose)
    if args.command == "status":
        reason = missing()
        print(reason or f"Apache RocketMQ {version()} ready in {lib_dir()}")
        return 1 if reason else 0
    import tempfile

    from benchmarks.rocketmq_admin import create_group, create_topic

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="rocketmq-"))
    server = ApacheRocketMQ(workdir, args.flush).start()
    try:
        for topic in args.topic:
            create_topic(server.broker_address, topic, 8)
        for group in args.group:
            create_group(server.broker_address, group)
        print(f"Apache RocketMQ {version()} ({args.flush}): gRPC {server.address}, name server "
              f"{server.namesrv_address}, broker {server.broker_address}, files in {workdir}", flush=True)
        stops = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        signal.sigwait(stops)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
