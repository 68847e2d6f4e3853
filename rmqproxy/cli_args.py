"""Argument types of the ``rmqproxy`` command's options (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import datetime

from rmqproxy.durations import parse_duration
from storage.registry import parse_store


def duration_arg(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def store_arg(text: str) -> str:
    try:
        return str(parse_store(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def multiplier_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not value >= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"the multiplier must be at least 1, not {text}")
    return value


def bool_arg(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def timestamp_arg(text: str) -> int | str:
    if text in ("latest", "earliest"):
        return text
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected latest, earliest, an ISO 8601 time or epoch milliseconds, not {text!r}") from exc
    return int(moment.timestamp() * 1000)
