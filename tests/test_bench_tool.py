"""`python -m benchmarks`: a short run against rmqproxy and the echo server writes figures that add
up (not the figures themselves: speed is measured by the benchmarks, not asserted by tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import REPO


@pytest.mark.slow
def test_a_short_run_measures_both_targets_and_writes_its_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--targets", "rmqproxy,echo", "--workloads", "send,receive",
         "--concurrency", "2", "--duration", "1.5", "--warmup", "0.5", "--repeat", "1", "--backlog", "300",
         "--processes", "1", "--out", str(tmp_path), "--name", "smoke", "--strict"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "smoke.json").read_text())
    runs = {(r["target"], r["workload"]): r for r in document["runs"]}
    assert set(runs) == {("rmqproxy", "send"), ("echo", "send"), ("rmqproxy", "receive"), ("echo", "receive")}
    for run in runs.values():
        assert run["errors"] == 0 and run["messages"] > 0 and run["rate"] > 0
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]
        assert run["peak_rss_mib"] > 10  # the server's memory was sampled
    # The backlog was drained: every stored message received once, none twice.
    assert runs[("rmqproxy", "receive")]["messages"] == 300
    ratios = {(r["ours"], r["other"], r["workload"]): r["rate_ratio"] for r in document["ratios"]}
    send = runs[("rmqproxy", "send")]["rate"] / runs[("echo", "send")]["rate"]
    assert abs(ratios[("rmqproxy", "echo", "send")] - send) < 0.01
    table = (tmp_path / "smoke.md").read_text()
    assert "| rmqproxy | 2 |" in table and "rmqproxy / echo" in table
    assert (tmp_path / "smoke.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("target", ["echo-thread", "echo-process"])
def test_the_echoes_that_wait_answer_every_send(tmp_path: Path, target: str) -> None:
    """The echoes pricing a send's wait for its store (a worker thread, a child process) answer
    every send of a run with several at once in flight, none lost, none twice."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--targets", target, "--workloads", "send",
         "--concurrency", "8", "--duration", "1.0", "--warmup", "0.3", "--repeat", "1",
         "--processes", "1", "--out", str(tmp_path), "--name", "hop", "--strict"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = json.loads((tmp_path / "hop.json").read_text())["runs"]
    assert run["target"] == target and run["errors"] == 0 and run["messages"] > 50
