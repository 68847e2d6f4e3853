"""The fault checker as a command: long runs of every fault, results under benchmarks/results.

    .venv/bin/python -m tests.faults --rounds 10 --load 5            # every fault, 10 rounds each
    .venv/bin/python -m tests.faults --fault sigstop --rounds 3      # one fault
    .venv/bin/python -m tests.faults --serve-args "--flush async"    # another server configuration
    .venv/bin/python -m tests.faults --fifo --rounds 5               # FIFO order checked too
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.checker import FAULTS, Report, run
from tests.serverproc import REPO, ServerProcess

RESULTS = REPO / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", action="append", choices=sorted(FAULTS),
                        help="a fault to inject (repeat for several; default: all)")
    parser.add_argument("--rounds", type=int, default=10, help="faults per run (default 10)")
    parser.add_argument("--load", type=float, default=5, help="seconds of load between faults (default 5)")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--serve-args", default="", help="extra `rmqproxy serve` options, one string")
    parser.add_argument("--fifo", action="store_true", help=(
        "a FIFO topic and group, each producer thread sending into a message group of its own; "
        "order is checked too"))
    parser.add_argument("--name", help="results file name under benchmarks/results (default faults, faults-fifo)")
    args = parser.parse_args(argv)

    reports: list[Report] = []
    for fault in args.fault or sorted(FAULTS):
        with tempfile.TemporaryDirectory(prefix=f"rmqproxy-faults-{fault}-") as tmp:
            workdir = Path(tmp)
            server = ServerProcess(workdir / "data", workdir / "server.log",
                                   extra_args=tuple(shlex.split(args.serve_args))).start(timeout=60)
            try:
                report = run(server, fault, workdir, rounds=args.rounds, load_s=args.load, producers=args.producers,
                             fifo=args.fifo)
            finally:
                if server.process is not None:
                    server.stop()
        print(report.line(), flush=True)
        reports.append(report)
    _write(args, reports)
    return 0 if all(r.lost == 0 and r.out_of_order == 0 for r in reports) else 1


def _write(args: argparse.Namespace, reports: list[Report]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.name or ("faults-fifo" if args.fifo else "faults")
    settings = {"rounds": args.rounds, "load_s": args.load, "producers": args.producers,
                "serve_args": args.serve_args, "fifo": args.fifo,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    load = ("two sync senders, each into a message group of its own, on a FIFO topic read by a FIFO group"
            if args.fifo else "one sync sender and four asynchronous sends in flight each")
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"settings": settings, "reports": [r.as_dict() for r in reports]}, indent=2) + "\n")
    lines = [f"# Fault checker ({name})", "",
             f"`python -m tests.faults {' '.join(sys.argv[1:])}` on {settings['date']}: {args.rounds} rounds "
             f"of each fault, {args.load} s of load between them, {args.producers} producers (the real Python "
             f"client: {load}), one SimpleConsumer acking "
             "everything (invisible duration 10 s); the consumer-* faults add, each round, a second consumer of the "
             "group that takes messages and never acks them, then freeze it (SIGSTOP past the invisible "
             "duration, then SIGCONT) or SIGKILL it.", "",
             "| fault | acknowledged | lost | out of order | duplicated | stored unacknowledged | failed sends | "
             "restarts by the checker | taken by victims | seconds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in reports:
        order = r.out_of_order if r.fifo else "-"
        lines.append(f"| {r.fault} | {r.acknowledged} | {r.lost} | {order} | {r.duplicated} | "
                     f"{r.stored_unacknowledged} | {r.failed_sends} | {r.restarts_by_checker} | "
                     f"{r.taken_by_victims} | {r.seconds:.0f} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
