"""The peers rmqproxy is compared with: NATS JetStream and RabbitMQ, each a private server process
and a load-generator driver (see ``benchmarks/drivers.py``).

Each server runs from Debian's package as a subprocess on loopback, on free ports, with every file
it writes under the caller's data directory, so a system-wide instance (the rabbitmq-server package
may start one on 5672) is never touched and several can come and go in one process.

Durability is set to what rmqproxy's acknowledgement means (a stored message, on disk):

* NATS JetStream: FILE storage; a publish returns once the server's PubAck came back. NATS 2.9
  write()s the message to its block file before that ack but fsyncs only on a background timer,
  every 2 minutes (seen with strace; 2.9 has no ``sync_interval`` option to change it, 2.10 added
  one), so an acknowledged message survives a server crash, not an OS crash or power loss.
* RabbitMQ: durable classic queues, persistent messages (delivery mode 2) and publisher confirms;
  a confirm for a persistent message on a durable queue is sent once the message store has
  fsynced it (or once a consumer has already acked it, when it never needed writing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aio_pika.abc
import nats
import nats.errors
import nats.js
import nats.js.api as js_api

from benchmarks.drivers import Driver, body, sent_ns
from benchmarks.harness import free_port

POLL_S = 1.0
"""How long ``consume`` waits for a first message, like rmqproxy's driver's long poll."""


def _wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.1)
    raise TimeoutError(f"server not ready after {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _name(text: str) -> str:
    """A stream or consumer name: NATS forbids '.', '*', '>', whitespace and path separators."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


# --- NATS JetStream --------------------------------------------------------------------------------


@dataclass
class NatsServer:
    """``nats-server`` with JetStream on FILE storage under ``data_dir``."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        # The INFO line a client gets on connect says whether JetStream is up yet.
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            line = sock.makefile("rb").readline()
        if not line.startswith(b"INFO "):
            return False
        return bool(json.loads(line[5:]).get("jetstream"))

    def start(self) -> NatsServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "nats.conf"
        # No http monitoring port, no cluster: nothing listens but the client port on loopback.
        # max_payload raised from 1 MB so the same body sizes can be sent as to rmqproxy.
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'server_name: "bench_{self.port}"\n'
            "max_payload: 8MB\n"
            f'jetstream {{\n  store_dir: "{self.data_dir / "jetstream"}"\n}}\n')
        log = self.data_dir / "nats.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(["nats-server", "-c", str(config)], stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, cwd=self.data_dir)
        _wait_ready(self.process, self._ready, log, 30)
        return self

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        _stop(self.process, 30)


async def nats_setup(address: str, topics: tuple[str, ...] | list[str], group: str) -> None:
    """One FILE stream per topic (subject = topic) and on each a durable pull consumer named after
    the group, explicit acks. Idempotent: re-adding an identical stream or consumer is a no-op."""
    nc = await nats.connect(address, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=30)
        for topic in topics:
            stream = _name(topic)
            await js.add_stream(js_api.StreamConfig(name=stream, subjects=[topic], storage=js_api.StorageType.FILE,
                                                    num_replicas=1))
            await js.add_consumer(stream, js_api.ConsumerConfig(
                durable_name=_name(group), ack_policy=js_api.AckPolicy.EXPLICIT,
                ack_wait=30,  # as rmqproxy's driver's invisible duration
                # The defaults (1,000 unacked, 512 waiting pull requests) would throttle many
                # concurrent consumers before the server itself does; rmqproxy has no such caps.
                max_ack_pending=1_000_000, max_waiting=16_384))
    finally:
        await nc.close()


class NatsDriver(Driver):
    """nats-py: JetStream publish awaiting its PubAck, pull-consumer fetch."""

    async def connect(self) -> None:
        self._nc = await nats.connect(self.target.address, allow_reconnect=False)
        self._js = self._nc.jetstream(timeout=30)
        self._subs: dict[str, list[nats.js.JetStreamContext.PullSubscription]] = {}

    async def produce(self, batch: int) -> None:
        topic = self.next_topic()
        if batch == 1:
            await self._js.publish(topic, body(self.target.size))
        else:
            await asyncio.gather(*(self._js.publish(topic, body(self.target.size)) for _ in range(batch)))

    async def consume(self, batch: int) -> list[int]:
        topic = self.next_topic()
        # One pull subscription per concurrent consume: nats-py's fetch on a shared subscription
        # lets concurrent fetches take each other's messages, and each then waits out its timeout.
        idle = self._subs.setdefault(topic, [])
        if idle:
            sub = idle.pop()
        else:
            # Binding needs no server round trip: the consumer was created by nats_setup.
            sub = await self._js.pull_subscribe_bind(durable=_name(self.target.group), stream=_name(topic))
        try:
            try:
                messages = await sub.fetch(batch, timeout=POLL_S)
            except TimeoutError:  # nats.errors.TimeoutError is one: nothing came within the poll
                return []
            for message in messages:
                # ack() publishes +ACK and returns without waiting for the server's reply (ack_sync
                # would wait): like AMQP's basic.ack, which has no reply either.
                await message.ack()
            return [sent_ns(message.data) for message in messages]
        finally:
            idle.append(sub)

    async def close(self) -> None:
        await self._nc.close()


# --- RabbitMQ --------------------------------------------------------------------------------------

RABBIT_BIN = "/usr/lib/rabbitmq/bin/rabbitmq-server"
"""The real start script: /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user
and the system node's directories."""

# The AMQP 0-9-1 protocol header; a ready broker answers it with a Connection.Start method frame.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


@dataclass
class RabbitServer:
    """``rabbitmq-server`` as its own Erlang node, with its own epmd, under ``data_dir``."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    epmd: subprocess.Popen[bytes] | None = None
    _beam: int | None = None

    @property
    def address(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _ready(self) -> bool:
        # Rabbit opens its AMQP listener last in boot; a Connection.Start means it serves clients.
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(_AMQP_HEADER)
            frame = sock.recv(7)
        return frame[:1] == b"\x01"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        home = self.data_dir / "home"  # .erlang.cookie is created here, not in /var/lib/rabbitmq
        home.mkdir(exist_ok=True)
        (self.data_dir / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq's
        (self.data_dir / "enabled_plugins").write_text("[].\n")  # no management plugin, no port
        (self.data_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "log.console = false\n")
        env.update({
            "HOME": str(home),
            "RABBITMQ_NODENAME": f"bench{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.data_dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.data_dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.data_dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data_dir / "log"),
            "RABBITMQ_PID_FILE": str(self.data_dir / "beam.pid"),
            # Distribution listens on loopback only, like everything else.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def start(self) -> RabbitServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = self._env()
        log = self.data_dir / "rabbit-stdout.log"
        # A private epmd (in the foreground, so it is ours to stop): the node would otherwise
        # register with, or daemonize, the machine's shared one on 4369.
        with open(self.data_dir / "epmd.log", "wb") as out:
            self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        with open(log, "wb") as out:
            # The script stays as a parent shell that turns SIGTERM into a clean node stop; the
            # Erlang VM (beam.smp) is its child and writes its own PID to RABBITMQ_PID_FILE.
            self.process = subprocess.Popen([RABBIT_BIN], stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, env=env, cwd=self.data_dir)
        try:
            _wait_ready(self.process, self._ready, log, 90)
            self._beam = int((self.data_dir / "beam.pid").read_text().split()[0])
            comm = Path(f"/proc/{self._beam}/comm").read_text().strip()
            if comm != "beam.smp":
                raise RuntimeError(f"pid file names {self._beam} ({comm}), not beam.smp")
        except BaseException:
            self.stop()
            raise
        return self

    def pid(self) -> int:
        """The Erlang VM's PID (not the start script's): what uses the CPU and memory."""
        assert self._beam is not None
        return self._beam

    def stop(self) -> None:
        _stop(self.process, 60)
        if self._beam is not None:
            # The script waits for the VM; should it have been killed instead, end the VM too.
            deadline = time.monotonic() + 10
            while not _gone(self._beam) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _gone(self._beam):
                os.kill(self._beam, signal.SIGKILL)
        _stop(self.epmd, 10)


async def rabbit_setup(address: str, topics: tuple[str, ...] | list[str], group: str) -> None:
    """One durable (classic) queue per topic. The group has no broker object of its own: its
    consumers compete on the topic's queue, as a RocketMQ group's consumers share its messages."""
    del group
    connection = await aio_pika.connect(address)
    try:
        channel = await connection.channel()
        for topic in topics:
            await channel.declare_queue(topic, durable=True)
    finally:
        await connection.close()


@dataclass
class _Inbox:
    """One topic's consumer: its own channel, so ``ack(multiple=True)`` covers only its messages."""

    channel: aio_pika.abc.AbstractChannel
    prefetch: int
    messages: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=asyncio.Queue)


class RabbitDriver(Driver):
    """aio-pika: persistent publish awaiting its publisher confirm, basic.consume with manual acks."""

    async def connect(self) -> None:
        self._connection = await aio_pika.connect(self.target.address)
        self._publisher = await self._connection.channel(publisher_confirms=True)
        self._inboxes: dict[str, list[_Inbox]] = {}

    def _message(self) -> aio_pika.Message:
        return aio_pika.Message(body(self.target.size), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)

    async def produce(self, batch: int) -> None:
        topic = self.next_topic()
        exchange = self._publisher.default_exchange
        # Each publish returns once the broker confirmed it (mandatory: an unroutable one fails).
        if batch == 1:
            await exchange.publish(self._message(), routing_key=topic)
        else:
            await asyncio.gather(*(exchange.publish(self._message(), routing_key=topic) for _ in range(batch)))

    async def _inbox(self, topic: str, batch: int) -> _Inbox:
        """An idle consumer of ``topic`` (a new one if all are busy): each concurrent consume has
        its own channel, prefetch and acks, as each RocketMQ receive has its own deliveries."""
        idle = self._inboxes.setdefault(topic, [])
        if idle:
            inbox = idle.pop()
            if batch > inbox.prefetch:
                await inbox.channel.set_qos(prefetch_count=batch)
                inbox.prefetch = batch
            return inbox
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=batch)
        inbox = _Inbox(channel, batch)
        queue = await channel.get_queue(topic, ensure=False)  # declared by rabbit_setup

        async def deliver(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            inbox.messages.put_nowait(message)

        await queue.consume(deliver, no_ack=False)
        return inbox

    async def consume(self, batch: int) -> list[int]:
        topic = self.next_topic()
        inbox = await self._inbox(topic, batch)
        try:
            try:
                first = await asyncio.wait_for(inbox.messages.get(), POLL_S)
            except TimeoutError:
                return []
            # What else is already here, as a RocketMQ receive or a JetStream fetch returns what is
            # available once one message is.
            taken = [first]
            while len(taken) < batch and not inbox.messages.empty():
                taken.append(inbox.messages.get_nowait())
            # Deliveries on a channel are in tag order, and this consume alone uses the channel.
            await taken[-1].ack(multiple=True)
            return [sent_ns(message.body) for message in taken]
        finally:
            self._inboxes[topic].append(inbox)

    async def close(self) -> None:
        await self._connection.close()
