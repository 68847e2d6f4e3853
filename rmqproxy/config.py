"""Server settings, built once from the command line and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from rmqproxy.listen import TlsMode

DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), ".rmqproxy", "data")
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8081
    data_dir: str = DEFAULT_DATA_DIR
    store: str = "rocksdb"
    """Which store (storage/registry.py): ``rocksdb[:PATH]`` (PATH defaults to ``data_dir``),
    ``memory``, ``redis://HOST:PORT[,...][/NAMESPACE]`` (Redis Cluster, docs/redis.md)."""
    redis_wait_replicas: int = 0
    """Redis store: a send is acknowledged once this many replicas have it (WAIT)."""
    redis_retries: int = 10
    """Redis store: retries of a call while the cluster fails over (then the call fails)."""
    flush: Literal["sync", "async"] = "sync"
    """sync: a send is acknowledged after fsync (group-committed); async: after the write reached
    the OS (survives a crash of the server process, not of the machine)."""
    store_process: bool = True
    """Run the RocksDB store in a process of its own (see storage/executor.py); False keeps it on
    a thread of the server process. The memory store is always on a thread."""
    auto_create: bool = False
    advertised_address: str | None = None
    """host:port put in routes when the client did not say which address it used."""
    broker_name: str = "rmqproxy"
    default_queues: int = 8
    max_body_bytes: int = 4 * MiB
    max_send_bytes_in_flight: int = 64 * MiB
    """Bytes of message bodies a server process works on for sends at once; further sends wait
    (rmqproxy/flow.py). 0: no limit."""
    max_properties: int = 128
    max_properties_bytes: int = 16 * 1024
    max_message_group_bytes: int = 64
    receive_batch_max: int = 32
    long_polling_ms: int = 20_000
    receive_gather_ms: int = 20
    lite_topic_quota: int = 1_000_000
    """Lite topics one parent may have (rmqproxy/broker/lite.py)."""
    lite_subscription_quota: int = 3_000
    """Lite topics one lite consumer may subscribe to (told to clients in their settings)."""
    max_lite_topic_size: int = 64
    """Longest lite topic name (told to clients in their settings)."""
    """A long poll woken on a busy topic waits up to this long for more messages (broker/longpoll.py)."""
    min_long_polling_ms: int = 5_000
    min_invisible_ms: int = 10_000
    max_invisible_ms: int = 12 * 3600_000
    auto_renew_invisible_ms: int = 30_000
    """Invisible duration the server gives push consumers (auto_renew) and keeps renewing."""
    auto_renew_margin_ms: int = 10_000
    """Renew an auto-renewed delivery when it has less than this left."""
    client_timeout_ms: int = 60_000
    """A client with no Telemetry stream and no heartbeat for this long is gone."""
    max_retries: int = 16
    max_delay_ms: int = 40 * 86_400_000
    """Scheduled messages may be due at most this far ahead (ILLEGAL_DELIVERY_TIME beyond)."""
    transaction_first_check_ms: int = 6_000
    """First check of a half message, unless its producer set orphaned_transaction_recovery_duration."""
    transaction_max_first_check_ms: int = 3600_000
    transaction_check_interval_ms: int = 30_000
    transaction_max_checks: int = 15
    """After this many unanswered checks the half message is rolled back."""
    retention_ms: int = 72 * 3600_000
    """Messages older than this are deleted, consumed or not, unless their topic says otherwise."""
    grace_seconds: float = 5.0
    tls_mode: TlsMode = "permissive"
    """permissive: TLS and plaintext on the one port; enforcing: TLS only; disabled: plaintext only."""
    tls_cert: str | None = None
    """PEM certificate chain (leaf first) and its key; without them a self-signed pair kept in
    ``<data_dir>/tls``."""
    tls_key: str | None = None
    tls_reload_ms: int = 60_000
    """How often the certificate files are checked for changes (0: only on SIGHUP)."""
    workers: int = 1
    """gRPC worker processes sharing the port (``serve --workers``); above 1, a supervisor runs them
    and one store process (rmqproxy/supervisor.py)."""
    store_socket: str | None = None
    """Set in a worker process only: the Unix socket of the store process it shares."""
    worker_index: int = 0
    """Set in a worker process only: which worker this is (1..workers), for logs and lease holders."""
    auth: bool = False
    trace: bool = False
    """Record each message's trace (rmqproxy/broker/trace.py; --trace on|off). Off by default: it cost
    more than 10 % of send throughput at 16 and 64 senders (benchmarks/results/trace.md)."""
    """Authenticate every call and authorize it against the ACLs (docs/auth.md); off by default."""
    init_user: str | None = None
    """A Super user to create on start if it does not exist yet, with ``init_secret``."""
    init_secret: str | None = field(default=None, repr=False)
    auth_skew_ms: int = 5 * 60_000
    """How far a client's clock may be off, beyond the time-zone span of x-mq-date-time."""
    handshake_timeout_ms: int = 10_000
    """A new connection that has not shown what it speaks (or finished its TLS handshake) by then is closed."""
    stream_write_timeout_ms: int = 10_000
    """A write to a ReceiveMessage or Telemetry stream that the client does not take within this ends the
    stream, and a receive's messages go back to the queue at once (0: wait for ever)."""
    metrics_port: int = 0
    console_port: int = 0
    """The web console on this port (0: none; ``serve`` defaults to 8080). Under --workers N only
    worker 1 serves it (rmqproxy/console/)."""
    console_host: str = "127.0.0.1"
    """Where the console listens: loopback unless told otherwise (``--console-host``)."""
    """Prometheus metrics on this port at /metrics (0: none; ``serve`` defaults to 5557, the reference's)."""
    cluster: str = "DefaultCluster"
    """The ``cluster`` label of every rocketmq_* metric (the reference's default cluster name)."""
