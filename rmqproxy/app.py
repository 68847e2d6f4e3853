"""Builds the server from its parts (the one place objects are wired together) and runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rmqproxy.admin import AdminService
from rmqproxy.admin_clients import ClientsAdminService
from rmqproxy.admin_messages import MessagesAdminService
from rmqproxy.auth.access import AccessControl
from rmqproxy.auth.service import AccessAdminService
from rmqproxy.broker.broker import Broker, BrokerSettings
from rmqproxy.broker.clients import ClientRegistry
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.broker.sharing import new_worker_id
from rmqproxy.broker.trace import StoreTracer
from rmqproxy.client_metrics import SERVICE_NAME as CLIENT_METRICS_SERVICE
from rmqproxy.client_metrics import ClientMetricsReceiver, add_client_metrics_to_server
from rmqproxy.clock import Sleeper, SystemClock
from rmqproxy.config import ServerConfig
from rmqproxy.durations import format_duration
from rmqproxy.grpc_handlers import GenericHandlersOnly
from rmqproxy.handlers.client import ClientHandler
from rmqproxy.handlers.consumer import ConsumerHandler
from rmqproxy.handlers.producer import ProducerHandler
from rmqproxy.handlers.pull import PullHandler
from rmqproxy.handlers.route import RouteHandler
from rmqproxy.handlers.transaction import TransactionHandler
from rmqproxy.listen import ports
from rmqproxy.listen.front import Front, ListenSettings, grpc_options, open_front
from rmqproxy.listen.peers import PeerTable
from rmqproxy.metrics import http as metrics_http
from rmqproxy.metrics.clients import ClientMetricsView
from rmqproxy.metrics.recorder import MetricsRecorder
from rmqproxy.metrics.rpc import RpcRecorder
from rmqproxy.metrics.scrape import MetricsSource
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2, service_pb2_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import (
    access_pb2,
    access_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    clients_pb2,
    clients_pb2_grpc,
    messages_pb2,
    messages_pb2_grpc,
)
from rmqproxy.pipeline import Pipeline
from rmqproxy.service import MessagingService
from storage.base import MessageStore
from storage.errors import StoreUnavailable
from storage.forwarding import ForwardingStore
from storage.process_executor import ProcessExecutor
from storage.registry import StoreOptions, describe, open_store, parse_store

log = logging.getLogger("rmqproxy")

MESSAGING_SERVICE = service_pb2.DESCRIPTOR.services_by_name["MessagingService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
ACCESS_SERVICE = access_pb2.DESCRIPTOR.services_by_name["Access"].full_name
CLIENTS_SERVICE = clients_pb2.DESCRIPTOR.services_by_name["Clients"].full_name
MESSAGES_SERVICE = messages_pb2.DESCRIPTOR.services_by_name["Messages"].full_name

GRPC_OPTIONS = [
    # Large enough to receive an over-limit body and answer MESSAGE_BODY_TOO_LARGE ourselves.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", -1),
    # Long-lived Telemetry streams: notice dead peers within a minute.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Calls gRPC core has received but the Python server has not picked up yet. Past the default
    # limits (1,000 soft, 3,000 hard) core cancels new calls: thousands of clients reconnecting at once
    # (after a restart) would see CANCELLED on their first long poll (benchmarks idle --burst).
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 20_000),
]


def store_options(config: ServerConfig) -> StoreOptions:
    return StoreOptions(data_dir=config.data_dir, in_thread=not config.store_process,
                        redis_wait_replicas=config.redis_wait_replicas, redis_retries=config.redis_retries)


def open_configured_store(config: ServerConfig) -> MessageStore:
    """The store ``--store`` names (storage/registry.py), wrapped in the worker that runs its calls
    if it is synchronous: its own process for RocksDB, unless told otherwise."""
    if config.store_socket is not None:
        from storage.store_client import StoreClient
        return StoreClient(config.store_socket)
    store = open_store(parse_store(config.store), store_options(config))
    if isinstance(store, ProcessExecutor):
        log.info("store process %d opened %s", store.pid, describe(parse_store(config.store), store_options(config)))
    return store


def listen_settings(config: ServerConfig) -> ListenSettings:
    advertised = config.advertised_address.rsplit(":", 1)[0] if config.advertised_address else ""
    return ListenSettings(
        host=config.host, port=config.port, tls_mode=config.tls_mode,
        cert_file=Path(config.tls_cert) if config.tls_cert else None,
        key_file=Path(config.tls_key) if config.tls_key else None,
        self_signed_dir=Path(config.data_dir) / "tls",
        extra_names=tuple(n for n in (config.host, advertised) if n and not ports.is_wildcard(n)),
        reload_seconds=config.tls_reload_ms / 1000, handshake_timeout=config.handshake_timeout_ms / 1000)


@dataclass
class Server:
    """A running server: its gRPC server behind its listening front, broker and store."""

    config: ServerConfig
    grpc_server: grpc.aio.Server
    front: Front
    broker: Broker
    store: MessageStore
    metrics: metrics_http.MetricsEndpoint | None = None
    access: AccessControl | None = None
    clients: ClientHandler | None = None
    console: Any = None
    """The web console (rmqproxy/console/server.py Console), when this process serves one."""

    @property
    def port(self) -> int:
        return self.front.port

    async def stop(self) -> None:
        if self.clients is not None:
            # Draining: connected clients are told to reconnect (to another worker or node, or to
            # this one once it is back) while their streams are still open.
            told = self.clients.ask_to_reconnect()
            if told:
                log.info("asked %d Telemetry stream(s) to reconnect", told)
        if self.metrics is not None:
            await self.metrics.close()
        if self.console is not None:
            await self.console.close()
        await self.front.close()
        if self.access is not None:
            self.access.stop()
        await self.grpc_server.stop(self.config.grace_seconds)
        await self.broker.stop()
        await self.store.close()


def metrics_port_of(config: ServerConfig) -> int:
    """The metrics port of this process: ``--metrics-port``, and under --workers N, worker i (1..N)
    serves ``--metrics-port + i - 1`` (0 stays 0: no metrics)."""
    if not config.metrics_port:
        return 0
    return config.metrics_port + max(config.worker_index - 1, 0)  # workers are numbered from 1


def console_port_of(config: ServerConfig) -> int:
    """The console port of this process: ``--console-port`` in a single process or worker 1 of
    --workers N (one console per node: it reads the shared store like any worker), else 0."""
    return config.console_port if config.worker_index <= 1 else 0


async def start(config: ServerConfig, clock: Sleeper | None = None) -> Server:
    clock = clock or SystemClock()
    settings = listen_settings(config)
    if config.worker_index == 0:  # a worker's supervisor has checked the port and keeps it
        ports.check_free(config.host, config.port)  # before the store: a taken port fails in a moment
    metrics_port = metrics_port_of(config)
    if metrics_port:
        metrics_http.check_free(config.host, metrics_port)
    console_port = console_port_of(config)
    if console_port:
        from rmqproxy.console import check_free as check_console_free
        check_console_free(config.console_host, console_port)
    started_ms = clock.now_ms()
    recorder = MetricsRecorder() if metrics_port or console_port else None
    store = open_configured_store(config)
    broker = Broker(
        store, clock,
        BrokerSettings(auto_create=config.auto_create, default_queues=config.default_queues,
                       auto_renew_invisible_ms=config.auto_renew_invisible_ms,
                       auto_renew_margin_ms=config.auto_renew_margin_ms, retention_ms=config.retention_ms,
                       transaction_check_interval_ms=config.transaction_check_interval_ms,
                       transaction_max_checks=config.transaction_max_checks, durable=config.flush == "sync",
                       receive_gather_ms=config.receive_gather_ms, lite_topic_quota=config.lite_topic_quota,
                       lite_subscription_quota=config.lite_subscription_quota,
                       max_lite_topic_size=config.max_lite_topic_size),
        ClientRegistry(config.client_timeout_ms),
        Waiters(clock),
        worker_id=new_worker_id(config.worker_index),
        events=recorder,
    )
    if config.trace:
        broker.trace = StoreTracer(store)
    await broker.start()
    server = grpc.aio.server(options=[*GRPC_OPTIONS, *grpc_options(settings)])
    route = RouteHandler(broker, config)
    peers = PeerTable()
    access: AccessControl | None = None
    if config.auth or config.init_user:
        access = AccessControl(store, clock, skew_ms=config.auth_skew_ms)
        try:
            await access.start(config.init_user, config.init_secret)
        except Exception:
            await broker.stop()
            await store.close()
            raise
    rpc = RpcRecorder()  # told of every RPC only when metrics are on
    pipeline = Pipeline(peers, access=access if config.auth else None,
                        observer=rpc if recorder is not None else None,
                        stream_write_timeout_s=config.stream_write_timeout_ms / 1000)
    client_handler = ClientHandler(broker, config, clock)
    service = MessagingService(
        route,
        client_handler,
        ProducerHandler(broker, config, clock, store_host=route.advertised),
        ConsumerHandler(broker, config, clock),
        TransactionHandler(broker),
        PullHandler(broker, config),
        pipeline=pipeline,
    )
    # Every service is added through ``handlers``: generic handlers only (see GenericHandlersOnly).
    handlers = GenericHandlersOnly(server)
    service_pb2_grpc.add_MessagingServiceServicer_to_server(service, handlers)  # type: ignore[no-untyped-call]
    admin = AdminService(broker, config, clock, pipeline)
    admin_pb2_grpc.add_AdminServicer_to_server(admin, handlers)  # type: ignore[no-untyped-call]
    clients_pb2_grpc.add_ClientsServicer_to_server(  # type: ignore[no-untyped-call]
        ClientsAdminService(broker, pipeline), handlers)
    access_admin = AccessAdminService(store, clock, pipeline, access.changed if access is not None else None)
    access_pb2_grpc.add_AccessServicer_to_server(access_admin, handlers)  # type: ignore[no-untyped-call]
    messages_admin = MessagesAdminService(broker, pipeline)
    messages_pb2_grpc.add_MessagesServicer_to_server(messages_admin, handlers)  # type: ignore[no-untyped-call]
    client_view = ClientMetricsView()
    add_client_metrics_to_server(ClientMetricsReceiver(
        clock, pipeline=pipeline, on_export=client_view.record if recorder is not None else None), handlers)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, handlers)
    reflection.enable_server_reflection(
        [MESSAGING_SERVICE, ADMIN_SERVICE, ACCESS_SERVICE, CLIENTS_SERVICE, MESSAGES_SERVICE, CLIENT_METRICS_SERVICE,
         health.SERVICE_NAME, reflection.SERVICE_NAME], handlers)
    try:
        front = open_front(server, settings, peers)
    except Exception:
        await broker.stop()
        await store.close()
        raise
    await server.start()
    await front.start()
    for name in ("", MESSAGING_SERVICE, ADMIN_SERVICE):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics = None
    if metrics_port and recorder is not None:
        # Each worker of --workers serves its own endpoint (port + worker index) under its own node_id:
        # sum the counters over them; the store's gauges are the same on every worker.
        node_id = f"{config.broker_name}-{config.worker_index}" if config.worker_index else config.broker_name
        source = MetricsSource(broker, recorder, client_view, rpc, clock, config.cluster, node_id)
        metrics = metrics_http.MetricsEndpoint(source, store.pid if isinstance(store, ProcessExecutor) else None)
        await metrics.start(config.host, metrics_port)
    console = None
    if console_port and recorder is not None:
        from rmqproxy.console.server import Console
        from rmqproxy.console.web import ConsoleServices

        console = Console(ConsoleServices(admin, messages_admin, access_admin, service, broker, access, config.auth,
                                          config, started_ms), clock, recorder)
        await console.start(config.console_host, console_port)
    return Server(config, server, front, broker, store, metrics, access, client_handler, console)


async def run(config: ServerConfig, ready: Any = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (the store is closed cleanly). A worker
    of ``serve --workers`` (rmqproxy/supervisor.py) tells its supervisor on ``ready`` once it listens."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stopping.set)
    server = await start(config)
    raised = ports.raise_open_files_limit()  # after the port check, whose refusal is the only line
    if raised:
        log.info("open files limit raised from %d to %d (each connection takes one, three behind the relay)",
                 *raised)
    failure: list[BaseException] = []

    def store_failed(exc: BaseException) -> None:  # on the store's worker thread
        failure.append(exc)
        loop.call_soon_threadsafe(stopping.set)

    if isinstance(server.store, ForwardingStore):
        server.store.on_failure = store_failed
    where = describe(parse_store(config.store), store_options(config))
    # A worker's line differs: the supervisor says "listening" once every worker does.
    log.info("%s on %s:%d (%s; %s, flush %s, auto-create %s, retention %s, auth %s)",
             f"worker {config.worker_index} serving" if config.worker_index else "rmqproxy listening", config.host,
             server.port, server.front.describe(), where, config.flush, "on" if config.auto_create else "off",
             format_duration(config.retention_ms), "on" if config.auth else "off")
    if ready is not None:
        with contextlib.suppress(OSError):  # a restarted worker's supervisor does not wait for it
            ready.send(True)
        ready.close()
    if server.metrics is not None:
        log.info("metrics at http://%s:%d/metrics", config.host, server.metrics.port)
    if server.console is not None:
        log.info("console at http://%s:%d/", config.console_host, server.console.port)
    await stopping.wait()
    if failure:
        # Nothing can be stored or delivered any more: exit (non-zero) so a supervisor restarts us.
        log.critical("the store failed (%s); stopping", failure[0])
    log.info("stopping")
    await server.stop()
    log.info("stopped")
    if failure:
        raise StoreUnavailable(f"the store failed: {failure[0]}")
