"""``python -m benchmarks``: measure rmqproxy beside the gRPC limit and the brokers users would pick
instead, in one run, and write the figures under benchmarks/results/.

    python -m benchmarks run                       # every workload, every target installed
    python -m benchmarks run --targets rmqproxy,echo --workloads send --concurrency 1,16,64
    python -m benchmarks backlog --backlogs 1000000,10000000
    python -m benchmarks breadth --topics 10000 --groups 1000
    python -m benchmarks idle --consumers 1000

Every server is started and stopped by the run, on loopback, with its data in a temporary
directory. See benchmarks/README.md for what each figure means and the latest results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import scale
from benchmarks.drivers import Target
from benchmarks.harness import csv_list
from benchmarks.load import WORKLOADS, Workload, fill, run_load
from benchmarks.report import Row, write
from benchmarks.targets import DEFAULT_TARGETS, DESCRIPTIONS, TARGETS, Sampler, missing, start

RESULTS = Path(__file__).resolve().parent / "results"
OURS = ("rmqproxy", "rmqproxy-async", "rmqproxy-thread", "rmqproxy-disabled", "rmqproxy-tls", "rmqproxy-enforcing",
        "rmqproxy-asyncio")


def run_command(args: argparse.Namespace) -> int:
    targets: list[str] = []
    for target in args.targets:
        why = missing(target)
        if why:
            print(f"skipping {target}: {why}", file=sys.stderr)
        else:
            targets.append(target)
    if not targets:
        print("nothing to measure", file=sys.stderr)
        return 2
    rows: list[Row] = []
    started = time.time()
    settings = {
        "size": f"{args.size} B", "batch": args.batch, "duration": f"{args.duration:g} s",
        "warm-up": f"{args.warmup:g} s", "load processes": args.processes, "topics": args.topics,
        "queues per topic": args.queues, "repeats": args.repeat, "receive backlog": args.backlog,
    }
    stem = args.name or time.strftime("run-%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as scratch:
        for repeat in range(1, args.repeat + 1):
            for workload_kind in args.workloads:
                # Targets one after another for each workload: the ratios compare runs minutes apart.
                for target in targets:
                    workdir = Path(scratch) / f"{repeat}-{workload_kind}-{target}"
                    rows += _measure(target, workload_kind, repeat, args, workdir)
            # Written after every repeat: a long run cut short still leaves what it measured.
            written = write(args.out, stem, "rmqproxy side by side", settings, rows, OURS, DESCRIPTIONS,
                            {"elapsed_s": round(time.time() - started, 1), "repeats_done": repeat})
    print(written[1].read_text())
    for path in written:
        print(f"wrote {path}")
    return 1 if any(r.errors for r in rows) and args.strict else 0


def _measure(target: str, workload_kind: str, repeat: int, args: argparse.Namespace, workdir: Path) -> list[Row]:
    server = start(target, workdir)
    rows = []
    try:
        sampler = Sampler(server.pid).start()
        for concurrency in args.concurrency:
            # Fresh topics and group for every level: what one level left behind (a backlog not
            # drained, a store grown by sends) does not weigh on the next.
            topics = tuple(f"bench-{workload_kind}-c{concurrency}-t{i}" for i in range(args.topics))
            group = f"bench-{workload_kind}-c{concurrency}-g"
            server.prepare(topics, [group], args.queues)
            driver_target = Target(server.kind, server.address, topics, group, args.size, server.tls_ca)
            workload = Workload(workload_kind, concurrency, args.duration, args.warmup, args.batch, args.backlog,
                                args.processes)
            label = f"[{repeat}/{args.repeat}] {target} {workload_kind} c={concurrency}"
            expected = 0
            if workload_kind == "receive":
                if target != "echo":  # the echo server hands out messages it never stored
                    took = fill(driver_target, args.backlog, processes=args.processes, label=f"{label} fill")
                    print(f"{label}: backlog of {args.backlog:,} sent in {took:.1f} s", file=sys.stderr)
                expected = args.backlog
            result = run_load(driver_target, workload, label=label, total_expected=expected)
            usage = sampler.usage(*result.window)
            row = Row.of(target, result, usage, args.size, repeat)
            rows.append(row)
            print(f"{label}: {row.rate:,.0f} msg/s, p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms, "
                  f"CPU {row.cpu_percent:.0f}%, RSS {row.peak_rss_mib:.0f} MiB"
                  + (f", {row.errors} errors ({row.first_error})" if row.errors else ""), file=sys.stderr)
        sampler.stop()
    finally:
        server.stop()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See benchmarks/README.md.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="throughput and latency of each workload against each target",
                              description="Throughput and latency of each workload at each concurrency "
                                          "against each target, side by side.")
    run.add_argument("--targets", type=csv_list(str, TARGETS), default=list(DEFAULT_TARGETS),
                     help=f"comma-separated, from {', '.join(TARGETS)} (default: {','.join(DEFAULT_TARGETS)}; "
                          "those not installed are skipped with a note)")
    run.add_argument("--workloads", type=csv_list(str, WORKLOADS), default=list(WORKLOADS),
                     help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)")
    run.add_argument("--concurrency", type=csv_list(int), default=[1, 8, 64],
                     help="tasks sending (or receiving) at once, a comma-separated list (default 1,8,64)")
    run.add_argument("--size", type=int, default=1024, help="message body bytes (default 1024)")
    run.add_argument("--batch", type=int, default=32,
                     help="messages per SendMessage in send-batch, per ReceiveMessage in receive/e2e (default 32)")
    run.add_argument("--duration", type=float, default=10, help="measured seconds per run (default 10)")
    run.add_argument("--warmup", type=float, default=2, help="seconds before measuring (default 2)")
    run.add_argument("--processes", type=int, default=2, help="load-generator processes (default 2)")
    run.add_argument("--topics", type=int, default=1, help="topics the load is spread over (default 1)")
    run.add_argument("--queues", type=int, default=8, help="queues per topic (default 8)")
    run.add_argument("--backlog", type=int, default=100_000,
                     help="messages stored before the receive workload drains them (default 100000)")
    run.add_argument("--repeat", type=int, default=3, help="runs of everything; figures are medians (default 3)")
    run.add_argument("--out", type=Path, default=RESULTS, help="where to write results (default benchmarks/results)")
    run.add_argument("--name", help="file name stem of the results (default run-DATE-TIME)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any request failed")
    run.set_defaults(func=run_command)

    scale.add_commands(commands, RESULTS)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
