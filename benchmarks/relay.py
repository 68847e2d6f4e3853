"""What the permissive relay costs by itself: CPU per relayed chunk, on uvloop and on asyncio's loop.

A relay (``rmqproxy.listen.relay``, the server's own code) runs in a process of its own in front of
a plain echo server (another process); a client opens a few HTTP/2-looking connections through it and ping-pongs
small messages, one at a time. Each round trip is two relayed chunks (one each way); the relay
process's CPU time over the round trips, from /proc, is the figure. Nothing else runs in the relay
process, so the figure is the relay's alone, whatever else the machine is doing.

    python -m benchmarks.relay --round-trips 20000 --size 256
"""

from __future__ import annotations

import argparse
import asyncio
import json
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from benchmarks.harness import REPO, free_port

RESULTS = Path(__file__).resolve().parent / "results"
LOOPS = ("uvloop", "asyncio")


def echo_process(port: int) -> None:
    """Entry point of the echo process: echo every connection's bytes until stdin closes."""
    listener = socket.create_server(("127.0.0.1", port))
    watch = selectors.DefaultSelector()
    watch.register(listener, selectors.EVENT_READ)
    watch.register(sys.stdin, selectors.EVENT_READ)
    print("echo ready", flush=True)
    while True:
        for key, _ in watch.select():
            if key.fileobj is sys.stdin:
                return
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                accepted, _ = listener.accept()
                accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                watch.register(accepted, selectors.EVENT_READ)
                continue
            data = sock.recv(65536)
            if data:
                sock.sendall(data)
            else:
                watch.unregister(sock)
                sock.close()


async def _relay_main(listen_port: int, upstream_port: int) -> None:
    from rmqproxy.listen import ports
    from rmqproxy.listen.peers import PeerTable
    from rmqproxy.listen.relay import PermissiveFront, Upstreams

    upstream = ("127.0.0.1", upstream_port)
    front = PermissiveFront(Upstreams(upstream, upstream), PeerTable(), handshake_timeout=10)
    await front.serve(ports.listen("127.0.0.1", listen_port))
    print("relay ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


def relay_process(loop: str, listen_port: int, upstream_port: int) -> None:
    """Entry point of the relay process."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(_relay_main(listen_port, upstream_port))
    else:
        asyncio.run(_relay_main(listen_port, upstream_port))


def _child(code: str) -> subprocess.Popen[bytes]:
    """A helper process running ``code``; it says when it is ready and ends when its stdin closes."""
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    assert child.stdout is not None
    child.stdout.readline()
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.stdin is not None:
        child.stdin.close()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def measure(loop: str, upstream_port: int, round_trips: int, size: int, connections: int) -> dict[str, float]:
    port = free_port()
    relay = _child(f"from benchmarks.relay import relay_process; relay_process({loop!r}, {port}, {upstream_port})")
    try:
        clients = []
        for _ in range(connections):
            client = socket.create_connection(("127.0.0.1", port))
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # what makes the relay choose plaintext
            echoed = b""
            while len(echoed) < 24:
                echoed += client.recv(64)
            clients.append(client)
        message = b"x" * size
        process = psutil.Process(relay.pid)
        before, began = process.cpu_times(), time.perf_counter()
        for index in range(round_trips):
            client = clients[index % connections]
            client.sendall(message)
            received = 0
            while received < size:
                received += len(client.recv(65536))
        after, took = process.cpu_times(), time.perf_counter() - began
        for client in clients:
            client.close()
    finally:
        _stop(relay)
    cpu = (after.user + after.system) - (before.user + before.system)
    return {"cpu_us_per_chunk": round(cpu / (2 * round_trips) * 1e6, 1),
            "round_trips_per_s": round(round_trips / took)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=256, help="bytes per message (default 256)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per loop; the median is kept (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    echo_port = free_port()
    echo = _child(f"from benchmarks.relay import echo_process; echo_process({echo_port})")
    figures: dict[str, list[dict[str, float]]] = {loop: [] for loop in LOOPS}
    try:
        for _ in range(args.repeat):
            for loop in LOOPS:  # taking turns, so both see the same machine
                figures[loop].append(measure(loop, echo_port, args.round_trips, args.size, args.connections))
    finally:
        _stop(echo)
    lines = ["# The permissive relay's own cost", "",
             f"{args.round_trips:,} round trips of {args.size} B over {args.connections} connections, "
             f"{args.repeat} runs per loop (median; all runs in relay.json).", "",
             "| event loop | relay CPU us per chunk | round trips/s |", "| --- | ---: | ---: |"]
    for loop in LOOPS:
        runs = sorted(figures[loop], key=lambda f: f["cpu_us_per_chunk"])
        middle = runs[len(runs) // 2]
        lines.append(f"| {loop} | {middle['cpu_us_per_chunk']:.1f} | {middle['round_trips_per_s']:,.0f} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "relay.md").write_text(text)
    (args.out / "relay.json").write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)},
                                                     "runs": figures}, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
