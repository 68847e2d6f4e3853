"""The order a receive visits a priority topic's queues (rmqproxy/broker/priority.py)."""

from __future__ import annotations

from rmqproxy.broker.priority import AGING_TURN, priority_order, priority_queue


def test_priority_queue_caps_at_the_top_level() -> None:
    assert [priority_queue(p, 4) for p in (0, 1, 3, 4, 99)] == [0, 1, 3, 3, 3]
    assert priority_queue(5, 1) == 0


def test_top_down_except_one_turn_in_aging_turn() -> None:
    orders = [priority_order(4, turn) for turn in range(3 * AGING_TURN)]
    leads = [order[0] for order in orders]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    # The lower levels lead in turn: 2, then 1, then 0; every other receive starts at the top.
    assert [(turn, lead) for turn, lead in enumerate(leads) if lead != 3] == [
        (AGING_TURN - 1, 2), (2 * AGING_TURN - 1, 1), (3 * AGING_TURN - 1, 0)]
    assert priority_order(4, AGING_TURN - 1) == [2, 1, 0, 3]
    assert priority_order(1, AGING_TURN - 1) == [0]
