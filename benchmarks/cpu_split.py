"""Where a server's CPU goes per message, thread by thread: the figures that survive a busy machine.

On a machine shared with other work, throughput and even the server's CPU per message move by
tens of percent between runs. This splits the server's CPU per message (user and system time,
from /proc) by process and thread (the event loop, gRPC's threads, the store process), and, when
``perf`` can read the kernel's tracepoints, counts each thread's context switches and system calls
per message: counts of work done, which other load changes far less than it changes time.

Each target is started (``benchmarks/targets.py``), warmed up, then measured under one workload;
targets take turns, ``--repeat`` times; figures are medians.

    python -m benchmarks.cpu_split --targets rmqproxy,rmqproxy-disabled,echo --workload send \\
        --concurrency 16 --duration 6 --repeat 3 --name cpu-split-send
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import psutil

from benchmarks.drivers import Target
from benchmarks.load import WORKLOADS, Workload, run_load
from benchmarks.targets import TARGETS, start

RESULTS = Path(__file__).resolve().parent / "results"
EVENTS = ("sched:sched_switch", "raw_syscalls:sys_enter", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
          "syscalls:sys_enter_recvmsg", "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_futex",
          "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_fdatasync")
Counts = dict[str, dict[str, float]]
"""Thread group -> figure name -> per message."""


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _group(root: int, pid: int, tid: int, comm: str) -> str:
    """A thread's group: the server's loop thread, its other threads by name, child processes by name."""
    if pid == root:
        return "server: event loop" if tid == pid else f"server: {comm} threads"
    return f"{comm} process" if tid == pid else f"{comm} process: threads"


def _cpu(root: int) -> dict[str, tuple[int, int]]:
    """(user, system) clock ticks per thread group of the process tree under ``root``."""
    ticks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for process in _tree(root):
        try:
            tids = os.listdir(f"/proc/{process.pid}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{process.pid}/task/{tid}/stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            group = ticks[_group(root, process.pid, int(tid), comm)]
            group[0] += int(fields[11])
            group[1] += int(fields[12])
    return {k: (v[0], v[1]) for k, v in ticks.items()}


def _perf(root: int, out: Path) -> subprocess.Popen[bytes] | None:
    """perf counting the tree's threads until it is sent SIGINT (then it writes its counts)."""
    if shutil.which("perf") is None:
        return None
    pids = ",".join(str(p.pid) for p in _tree(root))
    with out.open("wb") as sink:
        return subprocess.Popen(["perf", "stat", "-x,", "--per-thread", "-e", ",".join(EVENTS), "-p", pids],
                                stdout=subprocess.DEVNULL, stderr=sink)


def _owners(root: int) -> dict[int, int]:
    """Thread id -> process id, for the process tree under ``root``."""
    owners = {}
    for process in _tree(root):
        try:
            owners.update({int(tid): process.pid for tid in os.listdir(f"/proc/{process.pid}/task")})
        except FileNotFoundError:
            continue
    return owners


def _read_perf(root: int, out: Path, owners: dict[int, int]) -> dict[str, dict[str, int]]:
    """perf stat's per-thread counts (``comm-tid,count,,event,...``) summed per thread group."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in out.read_text(errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) < 4 or not fields[1].isdigit():
            continue
        comm, _, tid_text = fields[0].rpartition("-")
        tid = int(tid_text) if tid_text.isdigit() else 0
        pid = owners.get(tid, -1)
        name = fields[3].split(":")[-1].removeprefix("sys_enter_").replace("sys_enter", "syscalls")
        counts[_group(root, pid, tid, comm)][name] += int(fields[1])
    return counts


def measure(name: str, workdir: Path, workload: Workload, use_perf: bool) -> tuple[float, Counts]:
    """One run of ``workload`` against a fresh ``name``: (messages per second, figures per message)."""
    server = start(name, workdir)
    try:
        topics = ("cpu-split-t0",)
        server.prepare(topics, ["cpu-split-g0"], 8)
        target = Target(server.kind, server.address, topics, "cpu-split-g0", 1024, server.tls_ca)
        run_load(target, Workload(workload.kind, workload.concurrency, 2.0, 0.5, processes=workload.processes),
                 label=f"{name} warm-up")
        before, owners = _cpu(server.pid), _owners(server.pid)
        perf = _perf(server.pid, workdir / "perf.csv") if use_perf else None
        # CPU and counts cover the same span, from before the load starts to after it ends; with no
        # warm-up (the server is warm by now) every message in that span is counted.
        result = run_load(target, dataclasses.replace(workload, warmup=0.0), label=name)
        after = _cpu(server.pid)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
        if result.messages == 0:
            raise RuntimeError(f"{name}: no message completed in the measured window "
                               f"({result.first_error or 'no error'})")
        messages = result.messages
        tick = os.sysconf("SC_CLK_TCK")
        figures: Counts = defaultdict(dict)
        for group, (user, system) in after.items():
            user0, system0 = before.get(group, (0, 0))
            figures[group]["user us"] = (user - user0) / tick * 1e6 / messages
            figures[group]["system us"] = (system - system0) / tick * 1e6 / messages
        if perf is not None:
            for group, events in _read_perf(server.pid, workdir / "perf.csv", owners).items():
                for event, count in events.items():
                    figures[group][event] = count / messages
        return result.rate, figures
    finally:
        server.stop()


def _table(runs: list[tuple[float, Counts]]) -> tuple[float, Counts]:
    """Medians over runs (a figure missing from a run counts as 0)."""
    groups = {g for _, figures in runs for g in figures}
    merged: Counts = {}
    for group in groups:
        names = {n for _, figures in runs for n in figures.get(group, {})}
        merged[group] = {n: statistics.median(f.get(group, {}).get(n, 0.0) for _, f in runs) for n in names}
    return statistics.median(rate for rate, _ in runs), merged


def report(medians: dict[str, tuple[float, Counts]], settings: str) -> str:
    lines = ["# Server CPU per message, by thread", "", settings, "",
             "Medians over the repeats. *user* and *system*: microseconds of CPU per message; the counts "
             "(perf tracepoints): per message.", ""]
    columns = ["user us", "system us", "sched_switch", "syscalls", "read", "write", "recvmsg", "sendmsg",
               "futex", "epoll_wait", "epoll_pwait", "fdatasync"]
    for name, (rate, figures) in medians.items():
        total = sum(f.get("user us", 0) + f.get("system us", 0) for f in figures.values())
        lines += [f"## {name}: {rate:,.0f} msg/s, server CPU {total:,.0f} us per message", "",
                  "| threads | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
        order = sorted(figures, key=lambda g: -(figures[g].get("user us", 0) + figures[g].get("system us", 0)))
        for group in order:
            row = figures[group]
            if row.get("user us", 0) + row.get("system us", 0) < 1 and row.get("syscalls", 0) < 0.05:
                continue
            cells = [f"{row[c]:,.0f}" if c.endswith(" us") and c in row else f"{row[c]:.2f}" if c in row else ""
                     for c in columns]
            lines.append(f"| {group} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="rmqproxy,rmqproxy-disabled,echo")
    parser.add_argument("--workload", default="send", choices=[w for w in WORKLOADS if w != "receive"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--no-perf", action="store_true", help="CPU time only, no tracepoint counts")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="cpu-split")
    args = parser.parse_args(argv)
    names = args.targets.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    workload = Workload(args.workload, args.concurrency, args.duration, 0.2, processes=args.processes)
    runs: dict[str, list[tuple[float, Counts]]] = {n: [] for n in names}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cpu-split-") as tmp:
        for repeat in range(args.repeat):
            for name in names:  # taking turns, so every target sees the same machine
                runs[name].append(measure(name, Path(tmp) / f"{name}-{repeat}", workload, not args.no_perf))
    medians = {name: _table(r) for name, r in runs.items()}
    settings = (f"{args.workload}, concurrency {args.concurrency}, 1 KiB, {args.duration:g} s measured per run, "
                f"{args.repeat} repeats, targets taking turns; load average at the start "
                f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs.\n\n"
                f"    python -m benchmarks.cpu_split {' '.join(sys.argv[1:] if argv is None else argv)}")
    text = report(medians, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(text)
    (args.out / f"{args.name}.json").write_text(json.dumps(
        {"settings": vars(args) | {"out": str(args.out)}, "load_average": load,
         "runs": {n: [{"rate": rate, "figures": f} for rate, f in r] for n, r in runs.items()}}, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
