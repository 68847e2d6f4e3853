"""Apache RocketMQ as the behaviour oracle for what a client observes: the same client scenarios
(benchmarks/oracle_scenarios.py, run with a real client's runner from tests/clients) against
rmqproxy and against Apache RocketMQ, one server after the other, and a table per aspect side by
side: delivery attempts, retry delays, dead-letter properties, FIFO blocking, transaction checks.

    .venv/bin/python -m benchmarks.oracle_clients                      # both servers, every scenario
    .venv/bin/python -m benchmarks.oracle_clients --only push-normal   # one scenario
    .venv/bin/python -m benchmarks.oracle_clients --server rmqproxy    # one server (no comparison)

Both servers get the same topics and groups, each group with max retries 2 and the customized retry
policy 1 s, 2 s, and the same shortened transaction checks (benchmarks/oracle_peers.py says how each
is set). Delays are measured on this machine's clock and printed with their ratio to the policy;
two delays count as the same within 0.5 s or 25 %. Differences kept on purpose, and why, are in
docs/rocketmq-differences.md. Writes ``benchmarks/results/oracle-clients.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.oracle_peers import APACHE_BROKER, RMQPROXY_ARGS, STARTERS
from benchmarks.oracle_scenarios import MAX_RETRIES, RETRY_DELAYS_MS, SCENARIOS, Context, Row, Seconds, Value
from benchmarks.rocketmq_peer import missing, version

RESULTS = Path(__file__).resolve().parent / "results"
CLIENTS = {"python": "the Python client 5.1.2 (tests/clients/python/runner.py)",
           "java": "the Java client 5.2.0 (tests/clients/java)"}


def observe(server: str, scenarios: Sequence[str], scratch: Path, language: str = "python") -> list[Row]:
    """Start ``server`` (rmqproxy or rocketmq), run the scenarios against it with ``language``'s
    runner, stop it; every row observed."""
    peer = STARTERS[server](scratch / server)
    rows: list[Row] = []
    try:
        ctx = Context(peer, language)
        for name in scenarios:
            began = time.monotonic()
            found = SCENARIOS[name](ctx)
            print(f"{peer.label}: {name} ({time.monotonic() - began:.0f} s)", file=sys.stderr)
            for row in found:
                print(f"  {row[0]} | {row[1]}: {row[2]}", file=sys.stderr)
            rows += found
    finally:
        peer.stop()
    return rows


def same(ours: Value | None, theirs: Value | None) -> bool:
    if isinstance(ours, Seconds) and isinstance(theirs, Seconds):
        return ours.close_to(theirs)
    return ours == theirs


def _cell(value: Value | None) -> str:
    return "(not seen)" if value is None else str(value).replace("|", "\\|")


def render(results: dict[str, list[Row]], notes: dict[str, str], language: str = "python") -> str:
    """One table per aspect: item, each server's value, same."""
    labels = list(results)
    keyed = {label: {(a, i): v for a, i, v in rows} for label, rows in results.items()}
    order: list[tuple[str, str]] = []
    for rows in results.values():
        order += [(a, i) for a, i, _ in rows if (a, i) not in order]
    lines = ["# What a client observes: rmqproxy and Apache RocketMQ side by side", "",
             f"`python -m benchmarks.oracle_clients{'' if language == 'python' else ' --language ' + language}`: "
             f"the client scenarios of benchmarks/oracle_scenarios.py with {CLIENTS.get(language, language)} "
             "against each server in turn. Groups: max retries "
             f"{MAX_RETRIES}, customized retry policy {', '.join(f'{d / 1000:g} s' for d in RETRY_DELAYS_MS)}. "
             f"rmqproxy serve {' '.join(RMQPROXY_ARGS)}; Apache RocketMQ {version()} broker.conf "
             f"{' '.join(f'{k}={v}' for k, v in APACHE_BROKER.items())}, everything else as in "
             "benchmarks/README.md. Delays are this machine's wall clock (x: ratio to the policy); two count as "
             "the same within 0.5 s or 25 %. Deliberate differences: docs/rocketmq-differences.md.", ""]
    differ = 0
    for aspect in dict.fromkeys(a for a, _ in order):
        lines += [f"## {aspect}", "", f"| | {' | '.join(labels)} | same |",
                  "| --- |" + " --- |" * len(labels) + " :---: |"]
        for a, item in order:
            if a != aspect:
                continue
            values = [keyed[label].get((a, item)) for label in labels]
            alike = len(values) < 2 or same(values[0], values[1])
            differ += not alike
            lines.append(f"| {_cell(item)} | {' | '.join(_cell(v) for v in values)} | "
                         f"{'yes' if alike else '**no**'} |")
        if aspect in notes:
            lines += ["", notes[aspect]]
        lines.append("")
    lines.append(f"{len(order) - differ} of {len(order)} observations alike.")
    return "\n".join(lines) + "\n"


_DLQ = ("Where they differ: rmqproxy adds DLQ_ORIGIN_TOPIC, DLQ_ORIGIN_MESSAGE_ID and DLQ_DELIVERY_ATTEMPTS as user "
        "properties so that a consumer of %DLQ%<group> can tell where a dead letter came from and how often it "
        "was tried; the reference keeps its DLQ_ORIGIN_* among the system properties, which its proxy does not "
        "hand to gRPC clients. The reference reports the dead letter's type as DELAY (it came back through the "
        "broker's timer and keeps the timer's property), rmqproxy the original type. The reference carries the "
        "message's reconsume count over into the delivery attempt, rmqproxy counts the reading group's own "
        "deliveries from 1, so the reader's retry policy applies in full.")
NOTES = {
    "retry delays, push, normal group":
        "The reference brings back a message a push consumer failed through its pop revive service: the client's "
        "ChangeInvisibleDuration with the policy's delay writes a new checkpoint, which the revive thread acts on "
        "at a later scan, here about 2 s after the delay asked. rmqproxy makes the message visible when asked.",
    "dead letters, push, normal group": _DLQ,
    "dead letters, simple consumer": _DLQ,
    "dead letters, push, FIFO group":
        _DLQ + " The reference also shows __SHARDINGKEY (its internal copy of the message group) as a user "
        "property. rmqproxy's DLQ_DELIVERY_ATTEMPTS=1 is what the Python client 5.1.2 reports in "
        "ForwardMessageToDeadLetterQueue (the server's delivery attempt, not its own local retries).",
    "FIFO blocking, push":
        "Decided by the client, alike on both servers: the push consumer receives both message groups in one "
        "batch; the Python client 5.1.2 consumes the groups of a batch side by side (mg-1 goes on while mg-0 "
        "retries), the Java client 5.2.0 one message after another (mg-1 waits).",
    "FIFO blocking, simple consumer":
        "rmqproxy blocks only the message group of an unacknowledged FIFO message: mg-1 is received while "
        "mg-0#0 is invisible. The reference blocks the whole queue (its orderly pop locks the queue until the "
        "batch is acknowledged or becomes visible again), so nothing else arrives from it meanwhile.",
    "transaction checks":
        "The first check is timed from the send (the Python runner reports it; with another client, from the start "
        "of its process, start-up included). The reference's commit/rollback records are written in batches "
        "(transactionOpBatchInterval); with it left at 3 s while the first check came after 2 s, the reference "
        "once asked the checker about a message "
        "already rolled back and made it visible on the checker's commit, hence that setting too.",
    "delivery attempts, push, FIFO group":
        "The Python client 5.1.2 retries a FIFO message locally and hands the listener the server's delivery "
        "attempt each time (1), on either server.",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oracle_clients",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run this scenario (repeatable)")
    parser.add_argument("--server", action="append", choices=sorted(STARTERS), help="run against this server only")
    parser.add_argument("--language", default="python",
                        help="the client runner (default python; java writes oracle-clients-java.md)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where to write the tables (default benchmarks/results)")
    args = parser.parse_args(argv)
    servers = args.server or ["rmqproxy", "rocketmq"]
    if "rocketmq" in servers and (why := missing()):
        print(f"Apache RocketMQ cannot run here: {why}", file=sys.stderr)
        return 2
    scenarios = args.only or list(SCENARIOS)
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="rmq-oracle-clients-") as scratch:
        for server in servers:
            label = "rmqproxy" if server == "rmqproxy" else f"Apache RocketMQ {version()}"
            results[label] = observe(server, scenarios, Path(scratch), args.language)
    text = render(results, NOTES, args.language)
    print(text)
    if len(servers) == 2 and not args.only:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = "oracle-clients" + ("" if args.language == "python" else f"-{args.language}")
        (args.out / f"{stem}.md").write_text(text)
        (args.out / f"{stem}.json").write_text(json.dumps(
            {label: [{"aspect": a, "item": i, "value": str(v),
                      **({"seconds": v.measured, "policy_s": v.policy} if isinstance(v, Seconds) else {})}
                     for a, i, v in rows] for label, rows in results.items()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
