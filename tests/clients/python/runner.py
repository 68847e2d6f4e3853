"""The shared client scenarios (tests/clients/SCENARIOS.md) with rocketmq-python-client 5.1.2.

    runner.py SCENARIO --endpoint HOST:PORT [--tls default|on|off] [options]

Runs one scenario with the client's public API, as its users use it, and prints the result as the
last stdout line (one JSON object). tests/clientmatrix.py runs it; the tests assert on what it prints.
With ``--tls on`` the client verifies the server's certificate against grpc's roots, which the test
points at its own certificate with GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from _common import emit
from _runner_common import Connection
from _runner_consume import push_consume, simple_consume
from _runner_produce import produce, produce_delay, produce_fifo, produce_priority, produce_transaction

# -- command line ----------------------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[argparse.Namespace, Connection], dict[str, Any]]] = {
    "produce": produce,
    "produce-fifo": produce_fifo,
    "produce-priority": produce_priority,
    "produce-delay": produce_delay,
    "produce-transaction": produce_transaction,
    "simple-consume": simple_consume,
    "push-consume": push_consume,
}


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", required=True, help="HOST:PORT")
    common.add_argument("--tls", choices=("default", "on", "off"), default="default")
    common.add_argument("--access-key", default="")
    common.add_argument("--secret-key", default="")
    common.add_argument("--request-timeout-ms", type=int, default=10000)
    common.add_argument("--topic", required=True)

    main = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scenarios = main.add_subparsers(dest="scenario", required=True)
    sub = scenarios.add_parser("produce", parents=[common])
    sub.add_argument("--count", type=int, required=True)
    sub.add_argument("--mode", choices=("sync", "async", "mixed"), default="mixed")
    sub.add_argument("--prefix", default="m")
    sub.add_argument("--size", type=int, default=100)
    sub = scenarios.add_parser("produce-fifo", parents=[common])
    sub.add_argument("--count", type=int, required=True)
    sub.add_argument("--groups", type=int, required=True)
    sub.add_argument("--prefix", default="m")
    sub = scenarios.add_parser("produce-priority", parents=[common])
    sub.add_argument("--specs", required=True, help="PRIORITY:COUNT[,PRIORITY:COUNT...]")
    scenarios.add_parser("produce-delay", parents=[common])
    sub = scenarios.add_parser("produce-transaction", parents=[common])
    sub.add_argument("--linger", type=float, default=15)
    for name in ("simple-consume", "push-consume"):
        sub = scenarios.add_parser(name, parents=[common])
        sub.add_argument("--group", required=True)
        sub.add_argument("--expect", type=int, required=True)
        filters = sub.add_mutually_exclusive_group()
        filters.add_argument("--tag")
        filters.add_argument("--sql")
    sub = scenarios.choices["simple-consume"]
    sub.add_argument("--ack", action="store_true")
    sub.add_argument("--invisible-s", type=int, default=20)
    sub.add_argument("--max-wait-s", type=float, default=60)
    sub.add_argument("--batch", type=int, default=32)
    sub.add_argument("--change-invisible-s", type=int)
    sub = scenarios.choices["push-consume"]
    sub.add_argument("--fail", default="never")
    sub.add_argument("--max-wait-s", type=float, default=120)
    sub.add_argument("--linger-s", type=float, default=2)
    return main


def main() -> None:
    args = parser().parse_args()
    emit(SCENARIOS[args.scenario](args, Connection.from_args(args)))


if __name__ == "__main__":
    main()
