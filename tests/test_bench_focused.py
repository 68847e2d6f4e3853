"""The focused benchmarks (FIFO, filter, timers, retention disk) at toy sizes: each starts its own
server, measures and writes figures that hang together under benchmarks/results (here a temporary
directory). Speed itself is for the benchmarks to show, not for tests to assert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO


def _bench(tmp_path: Path, module: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args, "--out", str(tmp_path),
                           "--name", "smoke"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "smoke.md").read_text().startswith("# ")
    document: dict[str, Any] = json.loads((tmp_path / "smoke.json").read_text())
    assert document["machine"]["cpus"] >= 1
    return document


def test_fifo_measures_both_groups_at_each_message_group_count(tmp_path: Path) -> None:
    document = _bench(tmp_path, "fifo", "--messages", "300", "--consumers", "4", "--groups", "1,10", "--size", "64")
    assert [row["message_groups"] for row in document["rows"]] == [1, 10]
    for row in document["rows"]:
        assert row["fifo_rate"] > 0 and row["normal_rate"] > 0
        assert abs(row["ratio"] - row["fifo_rate"] / row["normal_rate"]) < 0.01


def test_filter_finds_the_rare_message_with_both_filters(tmp_path: Path) -> None:
    document = _bench(tmp_path, "filter", "--messages", "2000", "--size", "32")
    assert [(row["expression"], row["received"]) for row in document["rows"]] == [("rare", 1), ("kind = 'rare'", 1)]
    assert all(row["latency_ms"] > 0 for row in document["rows"])
    assert 0 < document["wake_ms"] < 20_000  # the waiting receive got it before its 20 s poll ended


def test_timers_lateness_and_memory_of_server_and_store(tmp_path: Path) -> None:
    document = _bench(tmp_path, "timers", "--timers", "300", "--window", "2", "--consumers", "2")
    lateness = document["lateness_ms"]
    assert lateness["min"] <= lateness["p50"] <= lateness["p99"] <= lateness["max"]
    peak = document["peak_rss_mib"]
    assert peak["server"] > 10 and peak["store"] > 10  # the store process is measured too
    assert abs(peak["total"] - peak["server"] - peak["store"]) < 0.2


def test_pending_timers_memory_counts_the_store_process(tmp_path: Path) -> None:
    document = _bench(tmp_path, "timers", "--pending", "2000")
    assert document["pending"] == 2000
    for side in ("rss_before_mib", "rss_after_mib"):
        assert document[side]["store"] > 10 and document[side]["server"] > 10


def test_retention_disk_samples_and_judges(tmp_path: Path) -> None:
    document = _bench(tmp_path, "retention_disk", "--rate", "200", "--seconds", "7", "--retention", "2s",
                      "--size", "256")
    samples = document["samples"]
    assert len(samples) >= 5 and samples[-1]["sent"] > 0
    assert document["verdict"] in ("bounded", "growing")
