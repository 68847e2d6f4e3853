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
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import idle, lite, scale
from benchmarks.drivers import Target
from benchmarks.harness import csv_list
from benchmarks.load import WORKLOADS, Workload, fill, run_load
from benchmarks.report import Row, write
from benchmarks.targets import DEFAULT_TARGETS, DESCRIPTIONS, TARGETS, Running, Sampler, missing, start

RESULTS = Path(__file__).resolve().parent / "results"
OURS = ("rmqproxy", "rmqproxy-async", "rmqproxy-thread", "rmqproxy-disabled", "rmqproxy-tls", "rmqproxy-enforcing",
        "rmqproxy-asyncio", "rmqproxy-metrics", "rmqproxy-notrace")


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
        # Other work on the machine weighs on every figure: the load average says how much there was.
        "load average at start (1, 5, 15 min)": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    if any(t.startswith("rocketmq") for t in targets):
        settings["JVM warm-up"] = f"{args.jvm_warmup:g} s"
    stem = args.name or time.strftime("run-%Y%m%d-%H%M%S")
    settings["order"] = "interleaved" if args.interleave else "one target after another"
    if any(t.startswith("rocketmq") for t in targets):
        from benchmarks.rocketmq_peer import settings as apache_settings

        settings["Apache RocketMQ"] = "; ".join(f"{k}: {v}" for k, v in apache_settings("per target").items())

    def save(repeats_done: int) -> list[Path]:
        # Written after every repeat (or level): a long run cut short still leaves what it measured.
        return write(args.out, stem, "rmqproxy side by side", settings, rows, OURS, DESCRIPTIONS,
                     {"elapsed_s": round(time.time() - started, 1), "repeats_done": repeats_done,
                      "load_average_at_end": [round(v, 2) for v in os.getloadavg()]})

    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as scratch:
        if args.interleave:
            for workload_kind in args.workloads:
                _measure_interleaved(targets, workload_kind, args, Path(scratch) / workload_kind, rows, save)
            written = save(args.repeat)
        else:
            for repeat in range(1, args.repeat + 1):
                for workload_kind in args.workloads:
                    # Targets one after another for each workload: the ratios compare runs minutes apart.
                    for target in targets:
                        workdir = Path(scratch) / f"{repeat}-{workload_kind}-{target}"
                        rows += _measure(target, workload_kind, repeat, args, workdir)
                written = save(repeat)
    print(written[1].read_text())
    for path in written:
        print(f"wrote {path}")
    return 1 if any(r.errors for r in rows) and args.strict else 0


def _measure(target: str, workload_kind: str, repeat: int, args: argparse.Namespace, workdir: Path) -> list[Row]:
    server = start(target, workdir, jvm_warmup=args.jvm_warmup)
    rows = []
    try:
        sampler = Sampler(server.pid, server.others).start()
        for concurrency in args.concurrency:
            rows.append(_measure_one(server, sampler, workload_kind, concurrency, repeat, args))
        sampler.stop()
    finally:
        server.stop()
    return rows


def _measure_interleaved(targets: Sequence[str], workload_kind: str, args: argparse.Namespace, workdir: Path,
                         rows: list[Row], save: Callable[[int], object]) -> None:
    """Every target started at once; at each concurrency, the repeats take turns between them (the
    first target of each round rotating), so runs compared in one repeat are seconds apart, not
    minutes: on a machine whose other load comes and goes, the ratios then hold still. Rows go
    into ``rows`` as they are measured."""
    servers: dict[str, Running] = {}
    samplers: dict[str, Sampler] = {}
    try:
        for target in targets:
            servers[target] = start(target, workdir / target, jvm_warmup=args.jvm_warmup)
            samplers[target] = Sampler(servers[target].pid, servers[target].others).start()
        for concurrency in args.concurrency:
            for repeat in range(1, args.repeat + 1):
                turn = (repeat - 1) % len(targets)
                for target in [*targets[turn:], *targets[:turn]]:
                    rows.append(_measure_one(servers[target], samplers[target], workload_kind, concurrency, repeat,
                                             args))
                save(repeat)
    finally:
        for target, server in servers.items():
            if target in samplers:
                samplers[target].stop()
            server.stop()


def _measure_one(server: Running, sampler: Sampler, workload_kind: str, concurrency: int, repeat: int,
                 args: argparse.Namespace) -> Row:
    target = server.name
    # Fresh topics and group for every level and repeat: what one run left behind (a backlog not
    # drained, a store grown by sends) does not weigh on the next.
    topics = tuple(f"bench-{workload_kind}-c{concurrency}-r{repeat}-t{i}" for i in range(args.topics))
    group = f"bench-{workload_kind}-c{concurrency}-r{repeat}-g"
    server.prepare(topics, [group], args.queues)
    driver_target = Target(server.kind, server.address, topics, group, args.size, server.tls_ca, server.credentials)
    workload = Workload(workload_kind, concurrency, args.duration, args.warmup, args.batch, args.backlog,
                        args.processes)
    label = f"[{repeat}/{args.repeat}] {target} {workload_kind} c={concurrency}"
    expected = 0
    if workload_kind == "receive":
        if not target.startswith("echo"):  # the echo servers hands out messages it never stored
            took = fill(driver_target, args.backlog, processes=args.processes, label=f"{label} fill")
            print(f"{label}: backlog of {args.backlog:,} sent in {took:.1f} s", file=sys.stderr)
        expected = args.backlog
    result = run_load(driver_target, workload, label=label, total_expected=expected)
    usage = sampler.usage(*result.window)
    row = Row.of(target, result, usage, args.size, repeat)
    print(f"{label}: {row.rate:,.0f} msg/s, p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms, "
          f"CPU {row.cpu_percent:.0f}%, {row.cpu_us_per_message:,.0f} us/msg, RSS {row.peak_rss_mib:.0f} MiB"
          + (f", {row.per_receive:.1f} per receive" if row.per_receive == row.per_receive else "")
          + (f", {row.errors} errors ({row.first_error})" if row.errors else ""), file=sys.stderr)
    return row


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
    run.add_argument("--jvm-warmup", type=float, default=10, help=(
        "seconds of throwaway load (e2e, then batched sends) a JVM target (rocketmq) gets after it started and "
        "before it is measured, so its code is compiled (default 10; 0: none)"))
    run.add_argument("--out", type=Path, default=RESULTS, help="where to write results (default benchmarks/results)")
    run.add_argument("--name", help="file name stem of the results (default run-DATE-TIME)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any request failed")
    run.add_argument("--interleave", action="store_true", help=(
        "start every target at once and let them take turns at each concurrency, repeat by repeat, so that "
        "runs compared are seconds apart (steadier ratios on a machine shared with other work); default: "
        "each target in turn, all its levels, then the next"))
    run.set_defaults(func=run_command)

    scale.add_commands(commands, RESULTS)
    idle.add_command(commands, RESULTS)
    lite.add_command(commands, RESULTS)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
