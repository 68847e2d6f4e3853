"""``rmqproxy serve``: its options and how they become a running server (one process, or a
supervisor with workers; rmqproxy/cli.py wires it in)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from typing import Any

from rmqproxy import cli_access, cli_message
from rmqproxy.cli_args import duration_arg, store_arg
from rmqproxy.config import DEFAULT_DATA_DIR, MiB, ServerConfig
from rmqproxy.listen import TLS_MODES
from storage.errors import StoreError
from storage.registry import parse_store


def add_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server", description=(
        "Run the server: RocketMQ 5.x gRPC (apache.rocketmq.v2.MessagingService), the admin API, the "
        "client-metrics receiver, server reflection and gRPC health, all on one port that serves TLS and "
        "plaintext (see --tls-mode)."))
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    serve.add_argument("--data-dir", default=None,
                       help=f"RocksDB data directory (default {DEFAULT_DATA_DIR}, or $RMQPROXY_DATA_DIR); "
                            "the same as --store rocksdb:DIR")
    serve.add_argument("--store", type=store_arg, default="rocksdb", metavar="SPEC",
                       help="rocksdb[:PATH] (default: on disk, PATH defaults to --data-dir), memory (nothing "
                            "survives a restart), or redis://HOST:PORT[,HOST:PORT...][/NAMESPACE] (Redis Cluster, any "
                            "of its nodes; several rmqproxy nodes may share it; NAMESPACE, default rmq, keeps "
                            "separate deployments apart on one cluster: docs/redis.md)")
    serve.add_argument("--redis-wait-replicas", type=int, default=0, metavar="N", help=(
        "Redis store: acknowledge a send only once N replicas of its primary have it (WAIT), so it "
        "survives the loss of that primary (default 0: once the primary has it)"))
    serve.add_argument("--redis-retry", type=int, default=10, metavar="N", help=(
        "Redis store: retry a call up to N times while the cluster fails over (connection errors, "
        "CLUSTERDOWN, MOVED), then fail it (default 10, about 6 s)"))
    serve.add_argument("--flush", choices=("sync", "async"), default="sync", help=(
        "sync (default): a send is acknowledged once fsynced (concurrent sends share one fsync); "
        "async: once written to the OS, which survives a crash of the server but not of the machine"))
    serve.add_argument("--store-thread", action="store_true", help=(
        "run the RocksDB store on a thread of the server process instead of in a process of its own "
        "(slower: a RocksDB write holds Python's GIL, fsync included, and stalls the server meanwhile)"))
    serve.add_argument("--auto-create", action="store_true",
                       help="create unknown topics (normal, 8 queues) and groups on first use (default: off, "
                            "unknown ones get TOPIC_NOT_FOUND / CONSUMER_GROUP_NOT_FOUND)")
    serve.add_argument("--retention", type=duration_arg, default=72 * 3600_000, metavar="DURATION",
                       help="delete messages older than this, consumed or not, unless their topic sets its own "
                            "(default 72h)")
    serve.add_argument("--max-delay", type=duration_arg, default=40 * 86_400_000, metavar="DURATION",
                       help="how far ahead a scheduled message may be due (default 40d; ILLEGAL_DELIVERY_TIME beyond)")
    serve.add_argument("--transaction-check-first", type=duration_arg, default=6_000, metavar="DURATION",
                       help="when a half message is first checked with its producer, unless the producer set "
                            "orphaned_transaction_recovery_duration (default 6s)")
    serve.add_argument("--transaction-check-interval", type=duration_arg, default=30_000, metavar="DURATION",
                       help="how often an unresolved half message is checked again (default 30s)")
    serve.add_argument("--transaction-max-checks", type=int, default=15, metavar="N",
                       help="checks before an unresolved half message is rolled back (default 15)")
    serve.add_argument("--advertise-address", metavar="HOST:PORT",
                       help="address given to clients in routes when they did not say which one they used")
    serve.add_argument("--tls-mode", choices=TLS_MODES, default="permissive", help=(
        "permissive (default): TLS and plaintext on the same port, told apart per connection, as Apache "
        "RocketMQ's proxy does; enforcing: TLS only; disabled: plaintext only"))
    serve.add_argument("--tls-cert", metavar="FILE", help=(
        "PEM certificate (a chain, leaf first) to serve; with --tls-key. Default: a self-signed certificate "
        "made on first start and kept in <data-dir>/tls/cert.pem (its path and SHA-256 fingerprint are logged)"))
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert (unencrypted)")
    serve.add_argument("--tls-reload", type=duration_arg, default=60_000, metavar="DURATION", help=(
        "how often the certificate files are checked for changes, picked up without a restart (default 1m; "
        "0: only on SIGHUP, which always reloads at once)"))
    serve.add_argument("--handshake-timeout", type=duration_arg, default=10_000, metavar="DURATION", help=(
        "a new connection must show whether it speaks TLS or HTTP/2 (and finish a TLS handshake) within "
        "this, or it is closed (default 10s)"))
    serve.add_argument("--stream-write-timeout", type=duration_arg, default=10_000, metavar="DURATION", help=(
        "a client that stops reading its ReceiveMessage or Telemetry stream for this long loses the stream, "
        "and the messages it was being sent are released to other consumers at once instead of staying "
        "invisible (default 10s; 0: wait for ever)"))
    serve.add_argument("--lite-topic-quota", type=int, default=1_000_000, metavar="N", help=(
        "lite topics (RocketMQ 5.5) one parent topic may have; a send that would make one more is refused "
        "with LITE_TOPIC_QUOTA_EXCEEDED (default 1000000)"))
    serve.add_argument("--lite-subscription-quota", type=int, default=3_000, metavar="N", help=(
        "lite topics one lite consumer may subscribe to, told to clients in their settings; more is refused "
        "with LITE_SUBSCRIPTION_QUOTA_EXCEEDED (default 3000)"))
    serve.add_argument("--max-lite-topic-size", type=int, default=64, metavar="N", help=(
        "longest lite topic name, told to clients in their settings; longer is ILLEGAL_LITE_TOPIC (default 64)"))
    serve.add_argument("--receive-gather", type=duration_arg, default=20, metavar="DURATION", help=(
        "a long-polling receive woken on a busy topic (messages arriving less than half this apart), while "
        "other receives of its group wait too, waits up to this long for more, so caught-up consumers get "
        "several messages per receive and ack; a quiet topic's messages, and a lone consumer's, go out at "
        "once (default 20ms; 0ms: never wait)"))
    serve.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop", help=(
        "uvloop (default): less CPU per call, and a cheaper permissive relay, than asyncio: the standard "
        "library's loop (figures in benchmarks/README.md)"))
    serve.add_argument("--max-send-mib-in-flight", type=int, default=64, metavar="MIB", help=(
        "message bodies a server process works on for sends at once, in MiB; further sends wait their "
        "turn, which bounds the server's memory under bursts of large batches (default 64; 0: no limit)"))
    serve.add_argument("--workers", type=int, default=None, metavar="N", help=(
        "gRPC worker processes sharing the port, in front of one store process (on Redis Cluster each "
        "connects to the cluster itself) (default: the number of cores, at most 8; 1: one process). "
        "Any worker serves any client: long polls, "
        "transaction checks and FIFO assignment work across them, and background jobs run once"))
    serve.add_argument("--metrics-port", type=int, default=5557, metavar="PORT", help=(
        "serve Prometheus metrics at http://HOST:PORT/metrics, with Apache RocketMQ's metric names and labels "
        "(rocketmq_*, so its Grafana dashboards work) plus rmqproxy_* and the clients' own metrics as "
        "rmqproxy_client_* (default 5557, the reference's; 0: no metrics); --workers N: worker i serves PORT+i-1"))
    serve.add_argument("--console-port", type=int, default=8080, metavar="PORT", help=(
        "serve the web console at http://CONSOLE_HOST:PORT/ (default 8080; 0: no console); under --workers N, "
        "worker 1 serves it (docs/console.md)"))
    serve.add_argument("--console-host", default="127.0.0.1", metavar="HOST", help=(
        "address the console listens on (default 127.0.0.1: this machine only; with --auth on, every page "
        "needs a signed-in user)"))
    serve.add_argument("--cluster", default="DefaultCluster",
                       help="the cluster label of every rocketmq_* metric (default DefaultCluster)")
    serve.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    cli_access.add_serve_options(serve)
    cli_message.add_serve_options(serve)


def serve(args: argparse.Namespace) -> int:
    from rmqproxy.app import run
    from rmqproxy.listen.certs import CertificateError
    from rmqproxy.supervisor import default_workers
    from rmqproxy.supervisor import serve as supervise
    from storage.malloc import release_large_buffers

    release_large_buffers()

    if (args.tls_cert is None) != (args.tls_key is None):
        print("rmqproxy: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tls_mode == "disabled" and args.tls_cert:
        print("rmqproxy: --tls-cert has no use with --tls-mode disabled", file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = parse_store(args.store)
    if args.data_dir is not None and spec.backend == "rocksdb" and spec.location is not None \
            and os.path.abspath(spec.location) != os.path.abspath(args.data_dir):
        print(f"rmqproxy: --store {spec} and --data-dir {args.data_dir} name different directories; "
              "give one", file=sys.stderr)
        return 2
    init_secret = None
    if args.init_user:
        try:
            init_secret = cli_access.read_secret(cli_access.INIT_SECRET_ENV, args.init_secret_file,
                                                 f"--init-user {args.init_user}")
            cli_access.check_init_user(args.init_user, init_secret)
        except ValueError as exc:
            print(f"rmqproxy: {exc}", file=sys.stderr)
            return 2
    # A Redis store's location is its addresses, not a directory: the data directory then holds
    # only the self-signed TLS certificate (<data-dir>/tls), as with the memory store.
    location = spec.location if spec.backend == "rocksdb" else None
    data_dir = args.data_dir or location or os.environ.get("RMQPROXY_DATA_DIR", DEFAULT_DATA_DIR)
    config = ServerConfig(host=args.host, port=args.port, data_dir=data_dir, store=str(spec), flush=args.flush,
                          store_process=not args.store_thread, redis_wait_replicas=args.redis_wait_replicas,
                          redis_retries=args.redis_retry,
                          auto_create=args.auto_create, advertised_address=args.advertise_address,
                          retention_ms=args.retention, max_delay_ms=args.max_delay,
                          transaction_first_check_ms=args.transaction_check_first,
                          transaction_check_interval_ms=args.transaction_check_interval,
                          transaction_max_checks=args.transaction_max_checks,
                          tls_mode=args.tls_mode, tls_cert=args.tls_cert, tls_key=args.tls_key,
                          tls_reload_ms=args.tls_reload, handshake_timeout_ms=args.handshake_timeout,
                          stream_write_timeout_ms=args.stream_write_timeout,
                          receive_gather_ms=args.receive_gather,
                          lite_topic_quota=args.lite_topic_quota, lite_subscription_quota=args.lite_subscription_quota,
                          max_lite_topic_size=args.max_lite_topic_size,
                          max_send_bytes_in_flight=max(args.max_send_mib_in_flight, 0) * MiB,
                          metrics_port=args.metrics_port, cluster=args.cluster,
                          console_port=args.console_port, console_host=args.console_host,
                          auth=args.auth, init_user=args.init_user, init_secret=init_secret,
                          trace=args.trace == "on")
    if args.workers is not None and args.workers < 1:
        print("rmqproxy: --workers must be at least 1", file=sys.stderr)
        return 2
    workers = default_workers() if args.workers is None else args.workers
    if args.store_thread:
        if args.workers is not None and args.workers > 1:
            print("rmqproxy: --store-thread keeps the store in the server process: it goes with --workers 1",
                  file=sys.stderr)
            return 2
        workers = 1
    try:
        if workers > 1:
            return supervise(dataclasses.replace(config, workers=workers), args.event_loop)
        if args.event_loop == "uvloop":
            import uvloop

            uvloop.run(run(config))
        else:
            asyncio.run(run(config))
    except (OSError, StoreError, CertificateError) as exc:
        print(f"rmqproxy: {exc}", file=sys.stderr)
        return 1
    return 0
