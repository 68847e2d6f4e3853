"""`python -m benchmarks backlog|breadth|idle` at toy sizes: each starts its own server, measures
what it says and writes figures that hang together (speed itself is for the benchmarks to show)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks", *args, "--out", str(tmp_path), "--name", "smoke"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "smoke.md").read_text().startswith("# ")
    document: dict[str, Any] = json.loads((tmp_path / "smoke.json").read_text())
    return document


def _latency_ok(figures: dict[str, Any]) -> None:
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_backlog_measures_each_size(tmp_path: Path) -> None:
    document = _bench(tmp_path, "backlog", "--backlogs", "2000,5000", "--calls", "40", "--processes", "1")
    rows = document["rows"]
    assert [row["backlog"] for row in rows] == [2000, 5000]
    for row in rows:
        _latency_ok(row["send"])
        _latency_ok(row["receive"])
        assert row["rss_mib"] > 10 and row["disk_mib"] >= 0
    assert rows[1]["disk_mib"] >= rows[0]["disk_mib"]  # the second size is the first plus more messages
    assert set(document["ratios"]) >= {"send_p50_ms", "receive_p50_ms", "rss"}


def test_breadth_measures_before_and_after_creating_topics_and_groups(tmp_path: Path) -> None:
    document = _bench(tmp_path, "breadth", "--topics", "30", "--groups", "6", "--calls", "40")
    for side in ("small", "large"):
        _latency_ok(document[side]["query_route"])
        _latency_ok(document[side]["receive"])
    assert document["topics"] == 30 and document["groups"] == 6
    assert document["rss_topics"] > 0 and document["rss_groups"] > 0


def test_idle_consumers_are_woken_by_a_send(tmp_path: Path) -> None:
    document = _bench(tmp_path, "idle", "--consumers", "20", "--channels", "2", "--hold", "1")
    assert document["consumers"] == 20
    assert 0 < document["wake_ms"] < 5000  # a waiting receive got the message, long before its 20 s poll ended
    assert document["peak_rss"] > 10 * 2**20
    assert document["errors"] == 0 and document["connections"] == 2


def test_thousands_of_connections_opened_at_once_are_all_served(tmp_path: Path) -> None:
    """As after a restart, when every client reconnects at once. gRPC core cancelled calls past
    3,000 not yet picked up by the server (its default), so some of these polls failed."""
    document = _bench(tmp_path, "idle", "--consumers", "4000", "--channels", "0", "--hold", "1")
    assert document["connections"] == 4000
    assert document["errors"] == 0, document["error_examples"]
    assert document["answered"] >= 1  # the poll woken by the send; the others wait 20 s
