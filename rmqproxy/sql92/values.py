"""Java's conversions and comparisons, as the SQL92 filter's reference applies them to property values."""

from __future__ import annotations

import math
import re
from typing import Final

from rmqproxy.sql92.errors import EvalError

LONG_MIN: Final = -(1 << 63)
LONG_MAX: Final = (1 << 63) - 1

# What Java's Long.valueOf and Double.valueOf accept.
_LONG_TEXT: Final = re.compile(r"[+-]?\d+")
_DOUBLE_TEXT: Final = re.compile(
    r"([+-]?)(?:(NaN|Infinity)"
    r"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?"
    r"|(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?)"
)
_JAVA_TRIM: Final = "".join(chr(c) for c in range(33))  # String.trim() strips every char <= ' '


def to_long(text: str) -> int:
    """Java's Long.valueOf, raising EvalError where Java throws."""
    if _LONG_TEXT.fullmatch(text) is None:
        raise EvalError(text)
    try:
        value = int(text)
    except ValueError:  # only beyond Python's digit limit
        raise EvalError(text) from None
    if not LONG_MIN <= value <= LONG_MAX:
        raise EvalError(text)
    return value


def to_double(text: str) -> float:
    """Java's Double.valueOf, raising EvalError where Java throws."""
    match = _DOUBLE_TEXT.fullmatch(text.strip(_JAVA_TRIM))
    if match is None:
        raise EvalError(text)
    sign, special, decimal, hexadecimal = match.groups()
    if special:
        value = math.nan if special == "NaN" else math.inf
    elif decimal:
        value = float(decimal)
    else:
        try:
            value = float.fromhex(hexadecimal)
        except OverflowError:
            value = math.inf
    return -value if sign == "-" else value


def compare_doubles(x: float, y: float) -> int:
    """Java's Double.compare: NaN is greatest and equal to itself, -0.0 is below 0.0."""
    if x < y:
        return -1
    if x > y:
        return 1
    if x == y and x != 0.0:
        return 0
    rank_x = 2.0 if math.isnan(x) else math.copysign(1.0, x)
    rank_y = 2.0 if math.isnan(y) else math.copysign(1.0, y)
    return (rank_x > rank_y) - (rank_x < rank_y)


def compare(left: object, right: object) -> int:
    """The reference's ComparisonExpression.__compare (string conversion on), for non-NULL values.

    Mixed types convert the string side to the other side's type; a failed conversion raises.
    """
    if type(left) is str:
        if type(right) is str:
            return (left > right) - (left < right)
        if type(right) is int:
            number = to_long(left)
            return (number > right) - (number < right)
        if type(right) is float:
            return compare_doubles(to_double(left), right)
        if type(right) is bool:
            flag = left.lower() == "true"
            return (flag > right) - (flag < right)
    elif type(left) is int:
        if type(right) is int:
            return (left > right) - (left < right)
        if type(right) is float:
            return compare_doubles(float(left), right)
        if type(right) is str:
            number = to_long(right)
            return (left > number) - (left < number)
        return -1
    elif type(left) is float:
        if type(right) is float:
            return compare_doubles(left, right)
        if type(right) is int:
            return compare_doubles(left, float(right))
        if type(right) is str:
            return compare_doubles(left, to_double(right))
        return -1
    elif type(left) is bool:
        if type(right) is bool:
            return (left > right) - (left < right)
        if type(right) is str:  # the reference casts the Boolean to String: ClassCastException
            raise EvalError(right)
        return -1
    raise EvalError(f"cannot compare {left!r} with {right!r}")
