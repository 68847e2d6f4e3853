"""The SQL92 filter's errors: the one raised for an invalid expression, and the one that rejects a message."""

from __future__ import annotations


class SqlFilterError(ValueError):
    """An invalid SQL92 filter expression.

    ``message`` says what is wrong, ``position`` is the 0-based offset in the expression where it is
    (None when it is not about one place), and ``str()`` gives both on one line, with ``>>>`` marking
    the spot in an excerpt of the expression.
    """

    def __init__(self, message: str, position: int | None = None, expression: str | None = None) -> None:
        self.message = message
        self.position = position
        self.expression = expression
        super().__init__(_render_error(message, position, expression))


def _render_error(message: str, position: int | None, expression: str | None) -> str:
    if position is None:
        return message
    if expression is None:
        return f"{message} at position {position}"
    before, after = expression[:position], expression[position:]
    if len(before) > 30:
        before = "..." + before[-30:]
    if len(after) > 30:
        after = after[:30] + "..."
    excerpt = "".join(c if c.isprintable() else " " for c in before + ">>>" + after)
    return f"{message} at position {position}: {excerpt}"


class EvalError(Exception):
    """A value could not be converted; the reference then rejects the whole message."""
