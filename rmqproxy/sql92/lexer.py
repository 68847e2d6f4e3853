"""The SQL92 filter's lexer: expression text to tokens, literals decoded, keywords upper-cased."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from rmqproxy.sql92.errors import SqlFilterError
from rmqproxy.sql92.values import LONG_MAX

_KEYWORDS: Final = frozenset(
    {"NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS", "CONTAINS", "STARTSWITH", "ENDSWITH"}
)
STRING_TESTS: Final = ("CONTAINS", "STARTSWITH", "ENDSWITH")

# One token per match, tried in this order; the decimal forms come before the integer so that the
# longest literal wins, as in the reference's lexer.
_TOKEN_RE: Final = re.compile(
    r"""
      (?P<space>[ \t\n\r\f]+)
    | (?P<comment>--[^\n\r]*(?:\r\n|\n|\r)|/\*.*?\*/)
    | (?P<float>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
    | (?P<int>(?:0|[1-9][0-9]*[lL]?))
    | (?P<str>'(?:''|[^'])*')
    | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op><>|<=|>=|[<>=(),+-])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "int", "float", "str", "id", "kw", "op" or "eof"
    text: str  # the source text; keywords upper-cased
    pos: int
    end: int
    value: object = None  # the literal's value


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    pos, length = 0, len(expression)
    while pos < length:
        match = _TOKEN_RE.match(expression, pos)
        if match is None:
            if expression[pos] == "'":
                raise SqlFilterError("unterminated string literal", pos, expression)
            if expression.startswith("/*", pos):
                raise SqlFilterError("unterminated comment", pos, expression)
            raise SqlFilterError(f"unexpected character {expression[pos]!r}", pos, expression)
        kind, text, end = match.lastgroup or "", match.group(), match.end()
        value: object = None
        if kind == "int":
            value = int(text.rstrip("lL"))
            if value > LONG_MAX:
                raise SqlFilterError(f"integer {text} is too large (the limit is {LONG_MAX})", pos, expression)
        elif kind == "float":
            value = float(text)
            if math.isinf(value):
                raise SqlFilterError(f"number {text} is too large for a double", pos, expression)
        elif kind == "str":
            value = text[1:-1].replace("''", "'")
        elif kind == "id" and text.upper() in _KEYWORDS:
            kind, text = "kw", text.upper()
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, text, pos, end, value))
        pos = end
    tokens.append(Token("eof", "", length, length))
    return tokens


def describe(token: Token) -> str:
    if token.kind == "eof":
        return "end of expression"
    text = token.text if len(token.text) <= 30 else token.text[:27] + "..."
    return text if token.kind == "str" else f"'{text}'"
