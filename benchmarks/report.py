"""Figures out of runs: percentiles, medians over repeats, ratios between targets measured side by
side, and the files a run leaves under ``benchmarks/results/`` (JSON, a Markdown table, a PNG chart)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.load import LoadResult
from benchmarks.targets import Usage

MiB = 1024 * 1024

FIGURES = ("rate", "mb_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "cpu_percent", "cpu_us_per_message",
           "peak_rss_mib")


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (the value at or below which ``fraction``
    of the samples lie)."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return float(ordered[rank])


@dataclass
class Row:
    """One measured run of one workload at one concurrency against one target."""

    target: str
    workload: str
    concurrency: int
    size: int
    batch: int
    repeat: int
    messages: int
    seconds: float
    rate: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    cpu_percent: float
    peak_rss_mib: float
    errors: int
    first_error: str | None
    cpu_us_per_message: float = float("nan")
    """The server's CPU time per message (all its processes): steadier than the rate when other
    work on the machine comes and goes, since it does not count the time the server waited for a core."""
    per_receive: float = float("nan")
    """e2e: messages per ReceiveMessage that brought any (a caught-up consumer's batching)."""

    @staticmethod
    def of(target: str, result: LoadResult, usage: Usage, size: int, repeat: int) -> Row:
        ordered = sorted(result.latencies_us)
        workload = result.workload
        return Row(
            target=target, workload=workload.kind, concurrency=workload.concurrency, size=size,
            batch=workload.batch if workload.kind in ("send-batch", "receive") else 1, repeat=repeat,
            messages=result.messages, seconds=round(result.seconds, 3), rate=round(result.rate, 1),
            mb_per_s=round(result.rate * size / MiB, 2),
            p50_ms=percentile(ordered, 0.5) / 1000, p99_ms=percentile(ordered, 0.99) / 1000,
            p999_ms=percentile(ordered, 0.999) / 1000, max_ms=(ordered[-1] / 1000 if ordered else float("nan")),
            cpu_percent=round(usage.cpu_percent, 1), peak_rss_mib=round(usage.peak_rss / MiB, 1),
            errors=result.errors, first_error=result.first_error,
            cpu_us_per_message=round(usage.cpu_percent * 1e4 / result.rate, 1) if result.rate else float("nan"),
            per_receive=round(result.messages / result.receives, 2) if result.receives else float("nan"))


Key = tuple[str, int]  # (workload, concurrency)


def medians(rows: Iterable[Row]) -> dict[tuple[str, str, int], dict[str, float]]:
    """(target, workload, concurrency) -> the median of every figure over the repeats."""
    grouped: dict[tuple[str, str, int], list[Row]] = defaultdict(list)
    for row in rows:
        grouped[(row.target, row.workload, row.concurrency)].append(row)
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for key, runs in grouped.items():
        figures = {name: float(statistics.median(getattr(r, name) for r in runs)) for name in FIGURES}
        figures["runs"] = len(runs)
        figures["errors"] = sum(r.errors for r in runs)
        out[key] = figures
    return out


def ratios(rows: Iterable[Row], ours: Sequence[str], others: Sequence[str]) -> dict[tuple[str, str, str, int], float]:
    """(ours, other, workload, concurrency) -> median over repeats of ours' rate / other's rate, each
    ratio taken between runs of the same repeat (side by side, minutes apart at most)."""
    by_run: dict[tuple[str, str, int, int], float] = {}
    for row in rows:
        by_run[(row.target, row.workload, row.concurrency, row.repeat)] = row.rate
    found: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for (target, workload, concurrency, repeat), rate in by_run.items():
        if target not in ours:
            continue
        for other in others:
            theirs = by_run.get((other, workload, concurrency, repeat))
            if other != target and theirs:
                found[(target, other, workload, concurrency)].append(rate / theirs)
    return {key: statistics.median(values) for key, values in found.items()}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    import grpc

    info["grpcio"] = grpc.__version__
    if shutil.which("nats-server"):
        info["nats-server"] = _first_line(["nats-server", "--version"])
    if Path("/usr/lib/rabbitmq/bin/rabbitmqctl").exists():
        info["rabbitmq"] = _dpkg_version("rabbitmq-server")
    return info


RESULTS = Path(__file__).resolve().parent / "results"
"""Where every benchmark writes its figures unless told otherwise (--out)."""


def write_summary(out: Path, stem: str, document: dict[str, Any], lines: list[str]) -> None:
    """Write ``<stem>.json`` (``document`` plus the machine) and ``<stem>.md`` (``lines`` plus the
    machine) under ``out``, print the Markdown and where both went."""
    out.mkdir(parents=True, exist_ok=True)
    document["machine"] = machine()
    (out / f"{stem}.json").write_text(json.dumps(document, indent=1) + "\n")
    text = "\n".join(lines) + "\n\nMachine: " + ", ".join(f"{k} {v}" for k, v in document["machine"].items()) + ".\n"
    (out / f"{stem}.md").write_text(text)
    print(text)
    print(f"wrote {out / (stem + '.json')}\nwrote {out / (stem + '.md')}")


def _first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def _dpkg_version(package: str) -> str:
    return _first_line(["dpkg-query", "-W", "-f=${Version}", package])


def _number(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def markdown(title: str, settings: dict[str, Any], rows: Sequence[Row], ours: Sequence[str],
             descriptions: dict[str, str]) -> str:
    table = medians(rows)
    targets = list(dict.fromkeys(r.target for r in rows))
    workloads = list(dict.fromkeys(r.workload for r in rows))
    lines = [f"# {title}", ""]
    lines.append("Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + ".")
    lines.append("")
    for target in targets:
        lines.append(f"- `{target}`: {descriptions.get(target, target)}")
    lines.append("")
    lines.append("Figures are medians over the repeats; latency is per RPC (send, receive) or per message from "
                 "send to arrival (e2e); CPU is the server's (all its processes), in % of one core and per message.")
    for workload in workloads:
        lines += ["", f"## {workload}", "",
                  "| target | concurrency | msg/s | MB/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU % "
                  "| server CPU us/msg | server peak RSS MiB | errors |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        levels = sorted({r.concurrency for r in rows if r.workload == workload})
        for concurrency in levels:
            for target in targets:
                figures = table.get((target, workload, concurrency))
                if figures is None:
                    continue
                lines.append(
                    f"| {target} | {concurrency} | {_number(figures['rate'])} | {_number(figures['mb_per_s'], 1)} "
                    f"| {_number(figures['p50_ms'], 1)} | {_number(figures['p99_ms'], 1)} "
                    f"| {_number(figures['p999_ms'], 1)} | {_number(figures['max_ms'], 1)} "
                    f"| {_number(figures['cpu_percent'])} | {_number(figures['cpu_us_per_message'])} "
                    f"| {_number(figures['peak_rss_mib'])} "
                    f"| {int(figures['errors'])} |")
        found = ratios([r for r in rows if r.workload == workload], ours, targets)
        if found:
            # Each of ours against each other server; among ours, only against the first (the default).
            pairs = sorted({(a, b) for (a, b, _, _) in found if b not in ours or a == ours[0]},
                           key=lambda p: (targets.index(p[0]), targets.index(p[1])))
            lines += ["", "Throughput ratios (median of per-repeat ratios):", "",
                      "| concurrency | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |",
                      "| ---: |" + " ---: |" * len(pairs)]
            for concurrency in levels:
                cells = [found.get((a, b, workload, concurrency)) for a, b in pairs]
                lines.append(f"| {concurrency} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    errors = [r for r in rows if r.first_error]
    if errors:
        lines += ["", "## Errors", ""]
        for row in errors[:20]:
            lines.append(f"- {row.target} {row.workload} c={row.concurrency} run {row.repeat}: {row.errors} "
                         f"errors, first: `{row.first_error}`")
    return "\n".join(lines) + "\n"


def chart(path: Path, rows: Sequence[Row]) -> bool:
    """Throughput and p99 latency against concurrency, one row of plots per workload. False when
    matplotlib is missing or there is nothing to plot against (a single concurrency level)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    table = medians(rows)
    workloads = list(dict.fromkeys(r.workload for r in rows))
    targets = list(dict.fromkeys(r.target for r in rows))
    figure, axes = plt.subplots(len(workloads), 2, figsize=(11, 3.6 * len(workloads)), squeeze=False)
    for line, workload in enumerate(workloads):
        throughput, latency = axes[line]
        for target in targets:
            points = sorted((c, f) for (t, w, c), f in table.items() if t == target and w == workload)
            if not points:
                continue
            levels = [c for c, _ in points]
            throughput.plot(levels, [f["rate"] for _, f in points], marker="o", label=target)
            latency.plot(levels, [f["p99_ms"] for _, f in points], marker="o", label=target)
        for axis, what in ((throughput, "messages/s"), (latency, "p99 latency, ms")):
            axis.set_xscale("log", base=2)
            axis.set_xlabel("concurrency")
            axis.set_ylabel(what)
            axis.set_title(f"{workload}: {what}")
            axis.grid(True, alpha=0.3)
        latency.set_yscale("log")
        throughput.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write(out_dir: Path, stem: str, title: str, settings: dict[str, Any], rows: Sequence[Row],
          ours: Sequence[str], descriptions: dict[str, str], extra: dict[str, Any] | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    table = medians(rows)
    targets = list(dict.fromkeys(r.target for r in rows))
    document = {
        "title": title, "settings": settings, "machine": machine(),
        "runs": [asdict(r) for r in rows],
        "medians": [{"target": t, "workload": w, "concurrency": c, **f} for (t, w, c), f in table.items()],
        "ratios": [{"ours": a, "other": b, "workload": w, "concurrency": c, "rate_ratio": round(v, 3)}
                   for (a, b, w, c), v in ratios(rows, ours, targets).items()],
        **(extra or {}),
    }
    written = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    written[0].write_text(json.dumps(document, indent=1, default=float) + "\n")
    text = markdown(title, settings, rows, ours, descriptions)
    text += "\nMachine: " + ", ".join(f"{k} {v}" for k, v in document["machine"].items()) + ".\n"
    written[1].write_text(text)
    png = out_dir / f"{stem}.png"
    if chart(png, rows):
        written.append(png)
    return written
