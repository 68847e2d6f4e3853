"""`python -m benchmarks run --interleave` with the TLS targets: a short run drives plaintext through the permissive
relay, TLS through the relay and TLS straight into gRPC without errors, and writes the ratio of the
default (permissive) server to the one without a relay (figures are the benchmark's business)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import REPO

TARGETS = ("rmqproxy", "rmqproxy-disabled", "rmqproxy-tls", "rmqproxy-enforcing")


def test_a_short_run_measures_every_tls_target(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "run", "--targets", ",".join(TARGETS), "--workloads", "send,receive",
         "--concurrency", "2", "--duration", "2", "--warmup", "1", "--repeat", "1", "--backlog", "200",
         "--processes", "1", "--out", str(tmp_path), "--name", "tls", "--strict", "--interleave"],
        cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "tls.json").read_text())
    runs = {(r["target"], r["workload"]): r for r in document["runs"]}
    assert set(runs) == {(t, w) for t in TARGETS for w in ("send", "receive")}
    for run in runs.values():
        assert run["errors"] == 0 and run["messages"] > 0, run
    for target in TARGETS:
        assert runs[(target, "receive")]["messages"] == 200  # the whole backlog, over TLS too
    ratios = {(r["ours"], r["other"], r["workload"]) for r in document["ratios"]}
    assert ("rmqproxy", "rmqproxy-disabled", "send") in ratios and ("rmqproxy", "rmqproxy-tls", "receive") in ratios
    assert "rmqproxy / rmqproxy-disabled" in (tmp_path / "tls.md").read_text()
