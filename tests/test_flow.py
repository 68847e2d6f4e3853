"""The send budget (rmqproxy/flow.py): waiting in turn, room given back on every exit path."""

from __future__ import annotations

import asyncio

import pytest

from rmqproxy.flow import ByteBudget


async def _enter(budget: ByteBudget, size: int, entered: list[int], leave: asyncio.Event) -> None:
    async with budget.hold(size):
        entered.append(size)
        await leave.wait()


async def test_sends_wait_for_room_and_enter_first_come_first_served() -> None:
    budget = ByteBudget(100)
    entered: list[int] = []
    leave = [asyncio.Event() for _ in range(4)]
    tasks = [asyncio.create_task(_enter(budget, size, entered, event))
             for size, event in zip((60, 50, 10, 40), leave, strict=True)]
    await asyncio.sleep(0)
    # 60 fits; 50 does not, and 10 (which would fit) waits behind it rather than overtaking.
    assert entered == [60] and budget.used == 60 and budget.waiting == 3
    leave[0].set()
    await asyncio.sleep(0.01)
    assert entered == [60, 50, 10, 40] and budget.used == 100
    for event in leave[1:]:
        event.set()
    await asyncio.gather(*tasks)
    assert budget.used == 0 and budget.waiting == 0


async def test_a_request_larger_than_the_budget_goes_through_alone() -> None:
    budget = ByteBudget(100)
    entered: list[int] = []
    leave = asyncio.Event()
    small = asyncio.create_task(_enter(budget, 30, entered, leave))
    await asyncio.sleep(0)
    huge = asyncio.create_task(_enter(budget, 500, entered, leave))
    await asyncio.sleep(0)
    assert entered == [30]
    leave.set()
    await asyncio.gather(small, huge)
    assert entered == [30, 500] and budget.used == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    budget = ByteBudget(100)
    entered: list[int] = []
    leave = asyncio.Event()
    first = asyncio.create_task(_enter(budget, 90, entered, leave))
    await asyncio.sleep(0)
    blocked = asyncio.create_task(_enter(budget, 50, entered, leave))
    behind = asyncio.create_task(_enter(budget, 10, entered, leave))
    await asyncio.sleep(0)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    await asyncio.sleep(0)
    assert entered == [90, 10]  # the 10 no longer waits behind a send that left
    leave.set()
    await asyncio.gather(first, behind)
    assert budget.used == 0 and budget.waiting == 0


async def test_no_limit_holds_nothing() -> None:
    budget = ByteBudget(0)
    async with budget.hold(10**9):
        assert budget.used == 0
