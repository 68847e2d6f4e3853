"""Server memory under bursts of large batches, with and without the send budget, in one run.

Sixteen senders each send 32 x 1 MiB per SendMessage as fast as the server answers, for a while;
the resident memory of the server and its store process is sampled every 100 ms. The same load
runs against a server with ``--max-send-mib-in-flight 0`` (no limit) and one with the default
(64), one after the other, and the peaks and the memory left 10 s after the load are printed side
by side, with the throughput each reached. Writes benchmarks/results/send-memory.json and .md.

    python -m benchmarks.send_memory [--senders 16] [--batch 32] [--seconds 20] [--budgets 0,64]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.harness import Server, async_stub, metadata, send_request
from benchmarks.report import RESULTS, write_summary

MiB = 1024 * 1024


def rss(pid: int) -> int:
    try:
        top = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [top, *top.children(recursive=True)])
    except psutil.Error:
        return 0


async def sender(address: str, topic: str, batch: int, body: bytes, until: float, sent: list[int]) -> None:
    channel, stub = async_stub(address)
    async with channel:
        while time.monotonic() < until:
            response = await stub.SendMessage(send_request(topic, body, batch), metadata=metadata("mem"), timeout=120)
            if response.status.code != 20000:
                raise RuntimeError(f"send failed: {response.status}")
            sent[0] += batch


async def measure(budget_mib: int, senders: int, batch: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rmqproxy-bench-") as tmp:
        server = Server(Path(tmp) / "data", ("--max-send-mib-in-flight", str(budget_mib), "--flush", "async",
                                             "--retention", "30s")).start()
        try:
            server.cli("topic", "create", "mem-topic", "--queues", "8")
            pid = server.pid()
            before = rss(pid)
            sent = [0]
            body = b"m" * MiB
            started = time.monotonic()
            until = started + seconds
            tasks = [asyncio.create_task(sender(server.address, "mem-topic", batch, body, until, sent))
                     for _ in range(senders)]
            peak = before
            while not all(t.done() for t in tasks):
                peak = max(peak, rss(pid))
                await asyncio.sleep(0.1)
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - started
            await asyncio.sleep(10)
            after = rss(pid)
        finally:
            server.stop()
    return {"budget_mib": budget_mib, "before_mib": before / MiB, "peak_mib": peak / MiB, "idle_after_mib": after / MiB,
            "mib_per_s": sent[0] / elapsed, "in_flight_mib": senders * batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32, help="1 MiB messages per SendMessage")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--budgets", default="0,64", help="--max-send-mib-in-flight values to compare")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="send-memory")
    args = parser.parse_args()
    rows = [asyncio.run(measure(int(b), args.senders, args.batch, args.seconds)) for b in args.budgets.split(",")]
    lines = ["# Server memory under bursts of large batches", "",
             f"{args.senders} senders, each {args.batch} x 1 MiB per SendMessage back to back for {args.seconds:.0f} s "
             f"({args.senders * args.batch} MiB asked in flight at once), --flush async; resident memory of the "
             "server and its store process together, sampled every 100 ms.", "",
             "| --max-send-mib-in-flight | before MiB | peak MiB | 10 s after MiB | sent MiB/s |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        label = "0 (no limit)" if row["budget_mib"] == 0 else f"{row['budget_mib']:.0f}"
        lines.append(f"| {label} | {row['before_mib']:.0f} | {row['peak_mib']:.0f} | {row['idle_after_mib']:.0f} | "
                     f"{row['mib_per_s']:.0f} |")
    write_summary(args.out, args.name, {"settings": vars(args) | {"out": str(args.out)}, "rows": rows}, lines)


if __name__ == "__main__":
    main()
