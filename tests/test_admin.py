"""Admin API logic that needs no server: flagging inconsistent subscriptions."""

from __future__ import annotations

import pytest

from rmqproxy.admin import inconsistent

A = frozenset({("orders", "*")})
B = frozenset({("orders", "TagA")})
C = frozenset({("orders", "*"), ("audit", "*")})


@pytest.mark.parametrize(("shapes", "flags"), [
    ([], []),
    ([A], [False]),
    ([A, A, A], [False, False, False]),
    ([A, A, B], [False, False, True]),
    ([B, A, A], [True, False, False]),
    ([A, B], [True, True]),  # no majority: both differ from the other
    ([A, A, B, B, C], [True, True, True, True, True]),
    ([A, A, A, B, C], [False, False, False, True, True]),
])
def test_inconsistent_subscriptions(shapes: list[frozenset[tuple[str, str]]], flags: list[bool]) -> None:
    assert inconsistent(shapes) == flags
