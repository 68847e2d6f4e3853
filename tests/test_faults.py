"""The short form of the fault checker (tests/faults): every fault, under load from the real Python
client; two rounds of each fault of the server or its store process, one of each fault of a second
consumer. The long form is a command: ``python -m tests.faults --rounds 20``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.checker import FAULTS, out_of_order, run
from tests.serverproc import ServerProcess


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_acknowledged_message_is_lost_under_faults(server: ServerProcess, tmp_path: Path, fault: str) -> None:
    report = run(server, fault, tmp_path, rounds=1 if fault.startswith("consumer-") else 2, load_s=3)
    print("\n" + report.line())
    assert report.acknowledged > 0 and report.delivered > 0, report
    assert report.lost == 0, f"{report.line()}; lost, e.g.: {report.lost_examples}"
    if fault.startswith("consumer-"):
        assert report.taken_by_victims > 0, report


@pytest.mark.slow
def test_fifo_order_holds_when_the_server_is_killed(server: ServerProcess, tmp_path: Path) -> None:
    report = run(server, "sigkill", tmp_path, rounds=2, load_s=3, fifo=True)
    print("\n" + report.line())
    assert report.acknowledged > 0 and report.delivered > 0, report
    assert report.lost == 0, f"{report.line()}; lost, e.g.: {report.lost_examples}"
    assert report.out_of_order == 0, f"{report.line()}; e.g.: {report.out_of_order_examples}"


def test_the_order_check_counts_only_first_deliveries_of_acknowledged_messages() -> None:
    acknowledged = {("p", 1), ("p", 2), ("p", 3), ("q", 1)}
    in_order = [("p", 1, "p-0"), ("q", 1, "q-0"), ("p", 2, "p-0"), ("p", 1, "p-0"), ("p", 3, "p-0")]
    assert out_of_order(in_order, acknowledged) == []  # a redelivery of 1 after 2 is not a reordering
    unacknowledged_late = [("p", 2, "p-0"), ("p", 0, "p-0"), ("p", 3, "p-0")]
    assert out_of_order(unacknowledged_late, acknowledged) == []  # 0 timed out on its producer
    reordered = [("p", 1, "p-0"), ("p", 3, "p-0"), ("p", 2, "p-0")]
    assert out_of_order(reordered, acknowledged) == [("p-0", "p", 2, 3)]
