"""What a store worker does: run calls by method name on a synchronous store, a round at a time,
with group commit of appends.

A synchronous backend (storage/base.py) implements the async contract with coroutines that never
suspend, so the worker (a thread, or the store process) drives each call to completion at once
with :func:`run_inline`, derived operations included: a derived operation runs whole, in one
round trip, with no other call in between.

Group commit: consecutive ``append`` calls of a round are merged into one ``store.append``: one
WriteBatch and, for durable stores, one fsync for all of them. The merged write uses the latest of
the callers' ``now_ms`` (time never goes back for any of them; each caller learns from its
outcomes what the store decided) and is durable if any of them asked. Each caller still gets its
own outcomes, or its own error: if a merged write fails, the appends are retried one by one so a
bad batch cannot fail its neighbours.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, NamedTuple, TypeVar

from storage.base import MessageStore
from storage.errors import StoreError
from storage.model import AppendBatch, AppendOutcome

T = TypeVar("T")

MAX_MERGE = 512
"""Most calls taken in one round: bounds the latency a single fsync adds to a round."""


class Call(NamedTuple):
    """A store method to run on the worker, by name (so it can cross to another process)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


Outcome = tuple[bool, Any]
"""(True, result) or (False, the exception the call raised)."""


class Suspended(StoreError):
    """A call awaited something real: only synchronous backends can be driven by a worker."""


def run_inline(result: Coroutine[Any, Any, T] | T) -> T:
    """The value of a store call, driving its coroutine to completion now. A synchronous backend's
    coroutines never suspend; one that does is refused (and closed), never left half done."""
    if not isinstance(result, Coroutine):
        return result
    try:
        result.send(None)
    except StopIteration as stop:
        value: T = stop.value
        return value
    result.close()
    raise Suspended("a store call suspended on the worker: this backend is not synchronous")


def invoke(store: MessageStore, call: Call) -> Any:
    """Run one call on ``store``: a public method (of the contract, or of the backend), by name."""
    if call.name.startswith("_"):
        raise StoreError(f"store call {call.name!r} is not a public method")
    method = getattr(store, call.name, None)
    if method is None or not callable(method):
        raise StoreError(f"the store has no method {call.name!r}")
    return run_inline(method(*call.args, **call.kwargs))


def execute_round(store: MessageStore, calls: Sequence[Call]) -> tuple[list[Outcome], int]:
    """Run one round of calls in order, consecutive appends as one write; the outcomes, and how
    many writes merged more than one append."""
    outcomes: list[Outcome] = []
    merged = 0
    index = 0
    while index < len(calls):
        if calls[index].name == "append":
            end = index
            while end < len(calls) and calls[end].name == "append":
                end += 1
            merged += _append(store, calls[index:end], outcomes)
            index = end
            continue
        try:
            outcomes.append((True, invoke(store, calls[index])))
        except BaseException as exc:  # handed to the awaiting caller
            outcomes.append((False, exc))
        index += 1
    return outcomes, merged


def _append(store: MessageStore, calls: Sequence[Call], outcomes: list[Outcome]) -> int:
    if len(calls) == 1:
        try:
            outcomes.append((True, invoke(store, calls[0])))
        except BaseException as exc:
            outcomes.append((False, exc))
        return 0
    try:
        parts: list[list[AppendBatch]] = [list(_append_args(call)[0]) for call in calls]
        now_ms = max(_append_args(call)[1] for call in calls)
        durable = any(_append_args(call)[2] for call in calls)
        results: list[list[AppendOutcome]] = run_inline(
            store.append([batch for part in parts for batch in part], now_ms, durable=durable))
    except BaseException:
        for single in calls:  # find which call failed; the others still go in
            _append(store, [single], outcomes)
        return 0
    start = 0
    for part in parts:
        outcomes.append((True, results[start:start + len(part)]))
        start += len(part)
    return 1


def _append_args(call: Call) -> tuple[Sequence[AppendBatch], int, bool]:
    """(batches, now_ms, durable) of an ``append`` call, however its arguments were passed."""
    arguments = dict(zip(("batches", "now_ms"), call.args, strict=False))
    arguments.update(call.kwargs)
    return arguments["batches"], arguments["now_ms"], arguments.get("durable", True)
