"""The load generator: asyncio tasks in several worker processes, each running one driver
(``benchmarks/drivers.py``) against one server, for one workload at one concurrency.

Workloads:

* ``send``: every task sends one message per RPC and waits for the answer;
* ``send-batch``: the same with ``batch`` messages per RPC;
* ``receive``: the topic is first filled with ``backlog`` messages (untimed), then every task
  receives up to ``batch`` messages per RPC and acknowledges them in one AckMessage, until the
  backlog is drained or the time is up;
* ``e2e``: ``concurrency`` tasks send one message per RPC while as many receive and acknowledge;
  latency is from the send time in the body to its arrival at a consumer.

Timing: the workers connect, then all start at one wall-clock instant the parent chose. What
completes during the first ``warmup`` seconds is not counted; the measured window is the
``duration`` seconds after it. Latency is per RPC for send and receive (what a caller waits), per
message for e2e. Progress is counted in shared memory, one slot per worker, so the parent can show
a live line without asking the workers anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.sharedctypes
import os
import queue
import sys
import time
import traceback
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.drivers import Target, make_driver

WORKLOADS = ("send", "send-batch", "receive", "e2e")


@dataclass(frozen=True)
class Workload:
    kind: str
    concurrency: int
    duration: float
    warmup: float = 1.0
    batch: int = 32
    backlog: int = 100_000
    processes: int = 2

    @property
    def send_batch(self) -> int:
        return self.batch if self.kind == "send-batch" else 1


@dataclass
class WorkerResult:
    messages: int = 0
    """Messages sent (send workloads) or received (receive, e2e) inside the measured window."""
    sent: int = 0
    receives: int = 0
    """ReceiveMessage calls that brought messages, inside the measured window (e2e)."""
    latencies_us: array[int] = field(default_factory=lambda: array("q"))
    errors: int = 0
    first_error: str | None = None
    last_done: float = 0.0
    """Wall-clock time of the last counted completion (receive: when the backlog ran out)."""


@dataclass
class LoadResult:
    workload: Workload
    messages: int
    sent: int
    seconds: float
    latencies_us: array[int]
    errors: int
    first_error: str | None
    window: tuple[float, float]
    """Wall-clock span the figures cover (for the server's CPU and memory over the same span)."""
    receives: int = 0
    """e2e: ReceiveMessage calls that brought messages (messages / receives: how many each brought)."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def split(total: int, parts: int) -> list[int]:
    """``total`` tasks over at most ``parts`` workers, none empty."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- inside a worker process -------------------------------------------------------------------

class _Clock:
    """Wall-clock window shared by every worker."""

    def __init__(self, start_at: float, warmup: float, duration: float) -> None:
        self.start_at = start_at
        self.window_start = start_at + warmup
        self.end_at = self.window_start + duration

    def counting(self, now: float) -> bool:
        return self.window_start <= now <= self.end_at


async def _run_tasks(target: Target, workload: Workload, tasks: int, start_at: float,
                     progress: Sequence[Any], slot: int, total_expected: int) -> WorkerResult:
    result = WorkerResult()
    clock = _Clock(start_at, workload.warmup, workload.duration)
    driver = make_driver(target)  # one connection per worker process, shared by its tasks
    await driver.connect()
    counter = progress[slot]
    now_ns = time.time_ns

    def failed(exc: BaseException) -> None:
        result.errors += 1
        if result.first_error is None:
            result.first_error = f"{type(exc).__name__}: {exc}"[:500]

    def drained() -> bool:
        return total_expected > 0 and sum(p.value for p in progress) >= total_expected

    async def sender() -> None:
        batch = workload.send_batch
        while True:
            began = time.time()
            if began >= clock.end_at:
                return
            try:
                await driver.produce(batch)
            except Exception as exc:
                failed(exc)
                await asyncio.sleep(0.05)
                continue
            done = time.time()
            if workload.kind != "e2e":
                counter.value += batch
            if clock.counting(done):
                result.sent += batch
                if workload.kind != "e2e":
                    result.messages += batch
                    result.latencies_us.append(int((done - began) * 1e6))
                    result.last_done = done

    async def receiver() -> None:
        while True:
            began = time.time()
            if began >= clock.end_at or drained():
                return
            try:
                stamps = await driver.consume(workload.batch)
            except Exception as exc:
                failed(exc)
                await asyncio.sleep(0.05)
                continue
            done = time.time()
            if not stamps:
                continue
            counter.value += len(stamps)
            if workload.kind == "e2e":
                if clock.counting(done):  # inside the window only, like send
                    arrived = now_ns()
                    result.messages += len(stamps)
                    result.receives += 1
                    result.latencies_us.extend((arrived - stamp) // 1000 for stamp in stamps)
                continue
            # receive counts from the common start: the backlog is finite, all of it is the work.
            result.messages += len(stamps)
            result.last_done = done
            result.latencies_us.append(int((done - began) * 1e6))

    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        if workload.kind in ("send", "send-batch"):
            await asyncio.gather(*(sender() for _ in range(tasks)))
        elif workload.kind == "receive":
            await asyncio.gather(*(receiver() for _ in range(tasks)))
        else:
            await asyncio.gather(*(sender() for _ in range(tasks)), *(receiver() for _ in range(tasks)))
    finally:
        with contextlib.suppress(Exception):
            await driver.close()
    return result


def _worker(target: Target, workload: Workload, tasks: int, start_at: float, progress: Sequence[Any],
            slot: int, total_expected: int, out: multiprocessing.Queue[Any]) -> None:
    try:
        result = asyncio.run(_run_tasks(target, workload, tasks, start_at, progress, slot, total_expected))
        out.put(("ok", slot, result))
    except BaseException:
        out.put(("error", slot, traceback.format_exc()))


# --- in the parent -----------------------------------------------------------------------------

def _context() -> multiprocessing.context.SpawnContext:
    # spawn, not fork: the parent may hold gRPC channels and threads, which do not survive a fork.
    return multiprocessing.get_context("spawn")


def run_load(target: Target, workload: Workload, *, label: str = "",
             progress_line: Callable[[str], None] | None = None, total_expected: int = 0,
             start_delay: float = 1.5) -> LoadResult:
    """Run one workload at one concurrency against a running, prepared server."""
    ctx = _context()
    shares = split(workload.concurrency, workload.processes)
    progress = [ctx.Value("q", 0, lock=False) for _ in shares]
    out: multiprocessing.Queue[Any] = ctx.Queue()
    # Process start-up (imports) takes about a second: the common start lies beyond it.
    start_at = time.time() + start_delay + 0.3 * len(shares)
    workers = [ctx.Process(target=_worker, args=(target, workload, tasks, start_at, progress, slot,
                                                 total_expected, out), daemon=True)
               for slot, tasks in enumerate(shares)]
    for worker in workers:
        worker.start()
    show = progress_line or _default_progress
    clock = _Clock(start_at, workload.warmup, workload.duration)
    results: dict[int, WorkerResult] = {}
    last_total, last_time = 0, time.time()
    deadline = clock.end_at + 60  # a bounded run: a worker stuck past this is a failure
    try:
        while len(results) < len(workers):
            try:
                status, slot, payload = out.get(timeout=0.5)
            except queue.Empty:
                now = time.time()
                if now > deadline:
                    raise TimeoutError(f"{label}: workers did not finish by {deadline - clock.end_at:.0f} s "
                                       "after the end of the run") from None
                if any(not w.is_alive() and w.exitcode not in (0, None) for w in workers) and out.empty():
                    raise RuntimeError(f"{label}: a worker process died") from None
                total = sum(p.value for p in progress)
                rate = (total - last_total) / max(1e-6, now - last_time)
                last_total, last_time = total, now
                phase = ("starting" if now < clock.start_at else "warm-up" if now < clock.window_start
                         else f"{min(now, clock.end_at) - clock.window_start:4.1f}/{workload.duration:.0f}s")
                show(f"{label} {phase}  {rate:>10,.0f} msg/s  total {total:,}")
                continue
            if status == "error":
                raise RuntimeError(f"{label}: worker {slot} failed:\n{payload}")
            results[slot] = payload
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
        show("")
    merged = array("q")
    for result in results.values():
        merged.extend(result.latencies_us)
    errors = sum(r.errors for r in results.values())
    first_error = next((r.first_error for r in results.values() if r.first_error), None)
    messages = sum(r.messages for r in results.values())
    if workload.kind == "receive":
        # From the common start to the last message received (the backlog ran out) or the end.
        finished = max((r.last_done for r in results.values()), default=clock.end_at)
        window = (clock.start_at, max(clock.start_at + 1e-6, min(finished, clock.end_at)))
    else:
        window = (clock.window_start, clock.end_at)
    return LoadResult(workload, messages, sum(r.sent for r in results.values()), window[1] - window[0], merged,
                      errors, first_error, window, sum(r.receives for r in results.values()))


def _default_progress(line: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K" + line)
        if not line:
            sys.stderr.write("\r")
    elif line and int(time.time() * 2) % 10 == 0:  # not a terminal (CI, a pipe): every ~5 s
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def fill(target: Target, messages: int, *, processes: int = 2, batch: int = 64, concurrency: int = 16,
         label: str = "fill") -> float:
    """Send exactly ``messages`` messages as fast as the server takes them (untimed preparation);
    the seconds it took."""
    began = time.time()
    sent = run_load_fixed(target, messages, batch=batch, concurrency=concurrency, processes=processes, label=label)
    if sent != messages:
        raise RuntimeError(f"{label}: sent {sent} messages, not {messages}")
    return time.time() - began


async def _fixed_tasks(target: Target, counts: list[int], batch: int, progress: Any) -> int:
    driver = make_driver(target)
    await driver.connect()
    try:
        async def one(count: int) -> None:
            while count > 0:
                size = min(batch, count)
                await driver.produce(size)
                progress.value += size
                count -= size

        await asyncio.gather(*(one(count) for count in counts))
    finally:
        await driver.close()
    return sum(counts)


def _fixed_worker(target: Target, counts: list[int], batch: int, progress: Any,
                  out: multiprocessing.Queue[Any]) -> None:
    try:
        out.put(("ok", asyncio.run(_fixed_tasks(target, counts, batch, progress))))
    except BaseException:
        out.put(("error", traceback.format_exc()))


def run_load_fixed(target: Target, messages: int, *, batch: int, concurrency: int, processes: int,
                   label: str) -> int:
    """Send ``messages`` messages from ``concurrency`` tasks over ``processes`` workers; how many were sent."""
    ctx = _context()
    tasks = split(messages, concurrency) if messages else []
    shares = split(len(tasks), processes) if tasks else []
    progress = [ctx.Value("q", 0, lock=False) for _ in shares]
    out: multiprocessing.Queue[Any] = ctx.Queue()
    workers, first = [], 0
    for i, share in enumerate(shares):
        counts = tasks[first:first + share]
        first += share
        workers.append(ctx.Process(target=_fixed_worker, args=(target, counts, batch, progress[i], out), daemon=True))
    for worker in workers:
        worker.start()
    sent, done = 0, 0
    try:
        while done < len(workers):
            try:
                status, payload = out.get(timeout=1)
            except queue.Empty:
                if all(not w.is_alive() for w in workers) and out.empty():
                    raise RuntimeError(f"{label}: the workers died") from None
                _default_progress(f"{label}: {sum(p.value for p in progress):,} sent")
                continue
            if status == "error":
                raise RuntimeError(f"{label}: {payload}")
            sent += payload
            done += 1
    finally:
        for worker in workers:
            worker.join(timeout=10)
        _default_progress("")
    return sent


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
