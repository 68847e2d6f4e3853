"""Priority topics (RocketMQ 5.4, RIP-80): which queue a priority message goes to, and the order in
which a receive visits a priority topic's queues.

The rule, as the reference broker has it: a message of priority ``p`` (>= 0) goes to queue
``min(p, queues - 1)``, so a topic with N queues has N priority levels and higher numbers are
higher priorities; within a level, messages keep their send order. A receive visits the queues from
the highest level down and fills its batch from the first ones that have messages ready
(redeliveries of a level come before its new messages, as in every queue), so a higher-priority
ready message is always received before a lower one.

Unlike the reference, lower levels are never starved: of every ``AGING_TURN`` receives of a topic,
one starts at a lower level instead of the top, taking the lower levels in turn (then goes on down
and wraps round to the top to fill the batch). A level below a busy one therefore leads at least
one receive in ``AGING_TURN * (queues - 1)``. Each receive still asks the store for at most a batch
per queue: its cost does not depend on how large any level's backlog is.
"""

from __future__ import annotations

AGING_TURN = 8
"""One receive in this many starts below the top priority (so lower priorities always move)."""


def priority_queue(priority: int, queues: int) -> int:
    """The queue of a priority message: its priority, capped at the topic's highest queue."""
    return max(0, min(priority, queues - 1))


def priority_order(queues: int, turn: int) -> list[int]:
    """The queue ids receive number ``turn`` of a priority topic visits, in order."""
    top_down = list(range(queues - 1, -1, -1))
    if queues < 2 or turn % AGING_TURN != AGING_TURN - 1:
        return top_down
    lead = 1 + (turn // AGING_TURN) % (queues - 1)  # a position below the top, taken in turn
    return top_down[lead:] + top_down[:lead]
