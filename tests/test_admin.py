"""Admin API logic that needs no server: flagging inconsistent subscriptions, exponential retry
policies given in part, the command's checks of its options."""

from __future__ import annotations

import pytest

from rmqproxy.admin_convert import inconsistent, policy_value
from rmqproxy.cli import main
from rmqproxy.errors import InvalidArgument
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from storage.model import CustomizedBackoff, ExponentialBackoff, RetryPolicy

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


def _exponential(**fields: object) -> api.RetryPolicy:
    message = api.RetryPolicy()
    message.exponential.SetInParent()
    for name, value in fields.items():
        if name == "multiplier":
            message.exponential.multiplier = value  # type: ignore[assignment]
        else:
            getattr(message.exponential, name).FromMilliseconds(value)
    return message


@pytest.mark.parametrize(("current", "fields", "expected"), [
    (None, {}, ExponentialBackoff(1000, 7_200_000, 2.0)),
    (CustomizedBackoff(), {"max": 10_000}, ExponentialBackoff(1000, 10_000, 2.0)),
    (ExponentialBackoff(3000, 60_000, 3.0), {"max": 10_000}, ExponentialBackoff(3000, 10_000, 3.0)),
    (ExponentialBackoff(3000, 60_000, 3.0), {"multiplier": 1.5}, ExponentialBackoff(3000, 60_000, 1.5)),
    (ExponentialBackoff(3000, 60_000, 3.0), {"initial": 500, "max": 700, "multiplier": 1.0},
     ExponentialBackoff(500, 700, 1.0)),
])
def test_exponential_fields_left_out_keep_the_current_values(current: RetryPolicy | None, fields: dict[str, object],
                                                             expected: ExponentialBackoff) -> None:
    assert policy_value(_exponential(**fields), current) == expected


def test_an_exponential_update_that_puts_max_below_the_kept_initial_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="max >= initial"):
        policy_value(_exponential(max=1000), ExponentialBackoff(3000, 60_000, 3.0))


@pytest.mark.parametrize("text", ["0", "0.5", "nan", "two"])
def test_the_command_refuses_a_multiplier_below_one(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["group", "update", "g-1", "--multiplier", text])
    assert exited.value.code == 2
    assert "--multiplier" in capsys.readouterr().err
