"""RocketMQ's SQL92 message-filter dialect: parse an expression once, then match it against messages.

``compile_sql(expression)`` parses and checks an expression and returns a :class:`SqlFilter`, whose
``matches(properties)`` decides one message from its user properties (strings, with the tag under
``TAGS``). Invalid expressions raise :class:`SqlFilterError` with the 0-based position of the problem.
Matching walks a tree of closures built at compile time; it never looks at the expression text again.

The dialect below was established by reading the reference implementation, Apache RocketMQ's
``filter`` module (a trimmed copy of ActiveMQ's JMS selector grammar); file names are relative to
``filter/src/main/java/org/apache/rocketmq/filter/`` unless they say otherwise.

Lexical rules (``parser/SelectorParser.jj``, ``parser/SelectorParserConstants.java``)
    * Whitespace is exactly space, tab, LF, CR and form feed; any other character outside a string
      literal that is not part of a token is an error. ``/* ... */`` comments are skipped, and so are
      ``-- ...`` comments. As in the reference, ``--`` only starts a comment when a line break ends
      it; otherwise it is two minus signs (``a = --5`` is ``a = 5``), except that a ``--`` comment
      after a complete expression runs to the end of the input (the reference ignores trailing
      input altogether, see below).
    * Keywords, case-insensitive: NOT AND OR BETWEEN IN TRUE FALSE NULL IS CONTAINS STARTSWITH ENDSWITH.
      They are reserved: a property cannot be called ``in`` or ``contains``.
    * Property names: ``[A-Za-z_$][A-Za-z0-9_$]*``, case-sensitive. No dots, dashes or quoted names.
    * Integer literals: ``0`` or ``[1-9][0-9]*`` with an optional ``L``/``l`` suffix, within Java's long
      range (larger is an error). No hex or octal: ``0x1F`` and ``017`` are syntax errors.
    * Decimal literals: ``5.5``, ``5.``, ``.5``, with an optional exponent (``5E10``, ``5.5e-3``);
      a literal that overflows a double is an error.
    * There are no negative literals: ``-5`` is unary minus applied to ``5`` (and ``+`` is a no-op).
    * String literals are single-quoted and may span lines; a quote inside is doubled: ``'it''s'``.
      There are no other escapes, and no double-quoted strings.
    * Operators: ``= <> > >= < <=`` (no ``!=`` or ``==``), parentheses, ``,`` in IN lists.

Grammar and precedence, loosest first (``parser/SelectorParser.jj``)
    OR; AND; ``= <> IS [NOT] NULL``; ``> >= < <= [NOT] BETWEEN x AND y [NOT] IN (...)
    [NOT] CONTAINS/STARTSWITH/ENDSWITH 'lit'``; unary ``+ - NOT``; literals, properties, parentheses.
    Unary NOT binds tighter than every comparison, so ``NOT a = 'x'`` means ``(NOT a) = 'x'`` (which
    never matches) and ``NOT a > 5`` is an error: write ``NOT (a = 'x')``. Operators at one level
    chain left to right, so ``a > 1 > 2`` compares a boolean and is rejected. The operands of IN,
    CONTAINS, STARTSWITH and ENDSWITH are string literals only. STARTSWITH and ENDSWITH (apache/rocketmq
    PR #6915, 2023) mirror CONTAINS, NOT forms included: the newest token tables
    (``parser/SelectorParserConstants.java``, ``parser/SelectorParserTokenManager.java``) and
    ``expression/ComparisonExpression.java`` (createNotStartsWith, createNotEndsWith) have them.

Checks made while parsing (``ComparisonExpression.java``, ``SelectorParser.jj`` asBooleanExpression)
    * A whole expression, each side of AND/OR and the operand of NOT must be boolean: a comparison,
      TRUE, FALSE, NULL or a bare property. A bare property is "cast": false when present (message
      properties are strings, never booleans), NULL when missing, so ``a`` alone never matches and
      ``NOT a`` matches every message that has ``a``. ``5`` or ``'x'`` alone are errors.
    * ``> >= < <=`` and BETWEEN accept numbers, properties and negations; a string literal, TRUE,
      FALSE, NULL or a boolean expression on either side is an error.
    * ``=`` and ``<>`` refuse the NULL literal (use IS NULL), and refuse a TRUE/FALSE literal on the
      left when the right side is a non-boolean literal (``TRUE = 1``; ``1 = TRUE`` is accepted).
    * ``x BETWEEN lo AND hi`` with literal bounds requires lo <= hi; NOT BETWEEN has no such check.
    * IN and NOT IN require a property on their left.

Evaluation (``ComparisonExpression.java``, ``LogicExpression.java``, ``UnaryExpression.java``,
``broker/.../filter/ExpressionMessageFilter.java``, ``broker/.../filter/MessageEvaluationContext.java``)
    * Three-valued logic: a missing property is NULL and a message matches only when the result is
      TRUE. AND is FALSE if either side is FALSE, else NULL if either is NULL; OR is TRUE if either is
      TRUE, else NULL if either is NULL; NOT NULL is NULL. Both are evaluated left to right and stop
      at the first deciding operand.
    * ``> >= < <=``: NULL if either side is NULL. A string (property value) compared with an integer
      literal is parsed as a Java long (``[+-]?digits``, no spaces, no decimal point: ``'1.0'`` is not
      an integer); compared with a decimal literal it is parsed as a Java double (surrounding control
      characters and spaces allowed, exponents, ``NaN``, ``Infinity``, hex floats, ``d``/``f``
      suffix). Two properties are both parsed as doubles. Doubles order as Java's
      ``Double.compareTo``: NaN above everything, -0.0 below 0.0. Strings are never ordered as text.
    * ``=``: NULL = NULL is TRUE (two missing properties are equal), NULL on the left only is NULL,
      NULL on the right only is FALSE; so ``a <> 'x'`` is NULL without ``a`` but ``'x' <> a`` is TRUE.
      Two strings compare as text; a string and a number convert the string to the number's type as
      above (so ``a = 1`` with ``a = '1.0'`` fails while ``a = 1.0`` matches); a property compared
      with TRUE/FALSE is true when it equals ``'true'`` ignoring case (``Boolean.valueOf``); a boolean
      on the left and a string on the right (``TRUE = a``, ``(a > 1) = 'x'``) fails; a number and a
      boolean are unequal. Integers and decimals compare as doubles. ``<>`` is NOT of ``=``.
    * A conversion that fails (``a > 5`` with ``a = 'abc'``) raises in the reference, and the broker
      then rejects the message outright, whatever the rest of the expression says: ``a > 5 OR b = 1``
      does not match ``{a: 'abc', b: '1'}``, nor does ``NOT (a > 5)``. This module does the same.
    * BETWEEN is ``x >= lo AND x <= hi``; NOT BETWEEN is ``x < lo OR x > hi``.
    * IN / NOT IN: NULL when the property is missing, else whether the value is (not) in the list.
    * CONTAINS, STARTSWITH, ENDSWITH and their NOT forms are FALSE (never NULL) when the left side is
      missing or not a string, and FALSE whenever the literal is empty, NOT forms included. Hence
      ``a NOT CONTAINS 'x'`` is false without ``a``, while ``NOT (a CONTAINS 'x')`` is true.
    * ``IS NULL`` is true when the operand is NULL (a missing property, or a comparison on one).
    * Unary minus negates numbers and yields NULL for anything else, so ``-a`` is always NULL.

Deliberate differences from the reference, all of them in favour of the user
    * Trailing input is an error. The reference stops parsing after the first complete expression
      and silently ignores the rest (``a = 1 b = 2`` means ``a = 1`` there).
    * Integer literals all behave as Java longs. The reference stores literals that fit 32 bits as
      ints and parses the property with ``Integer.valueOf``, so ``a > 5`` rejected a message with
      ``a = '3000000000'``; here it matches.
    * A decimal literal equal to zero (``0.0``, ``.0``, ``0e5``) is accepted; the reference rejects
      every double below ``Double.MIN_VALUE``, zero included, which is a bug.
    * Nesting is limited (:data:`MAX_DEPTH`) so that hostile input cannot exhaust Python's stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

__all__ = ["MAX_DEPTH", "SqlFilter", "SqlFilterError", "compile_sql"]

MAX_DEPTH: Final = 64
"""How deeply parentheses and unary operators may nest, and how deep the expression tree may be."""

_LONG_MIN: Final = -(1 << 63)
_LONG_MAX: Final = (1 << 63) - 1
_KEYWORDS: Final = frozenset(
    {"NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS", "CONTAINS", "STARTSWITH", "ENDSWITH"}
)
_STRING_TESTS: Final = ("CONTAINS", "STARTSWITH", "ENDSWITH")

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

# What Java's Long.valueOf and Double.valueOf accept.
_LONG_TEXT: Final = re.compile(r"[+-]?\d+")
_DOUBLE_TEXT: Final = re.compile(
    r"([+-]?)(?:(NaN|Infinity)"
    r"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?"
    r"|(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?)"
)
_JAVA_TRIM: Final = "".join(chr(c) for c in range(33))  # String.trim() strips every char <= ' '

Properties = Mapping[str, str]
_Eval = Callable[[Properties], object]
"""A compiled node: the Java value it stands for, as None (NULL), bool, int (long), float (double) or str."""


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


class _EvalError(Exception):
    """A value could not be converted; the reference then rejects the whole message."""


class SqlFilter:
    """A compiled SQL92 filter: immutable, cheap to call, safe to share between threads."""

    __slots__ = ("_evaluate", "expression", "properties")

    expression: str
    """The source expression."""
    properties: frozenset[str]
    """The property names the expression reads (``TAGS`` included when it tests the tag)."""

    def __init__(self, expression: str, evaluate: _Eval, properties: frozenset[str]) -> None:
        self.expression = expression
        self.properties = properties
        self._evaluate = evaluate

    def matches(self, properties: Properties) -> bool:
        """Whether a message with these user properties (tag under ``TAGS``) passes the filter."""
        try:
            return self._evaluate(properties) is True
        except _EvalError:
            return False

    def __repr__(self) -> str:
        return f"SqlFilter({self.expression!r})"


def compile_sql(expression: str) -> SqlFilter:
    """Parse and check ``expression`` once; raise :class:`SqlFilterError` if it is not valid."""
    parser = _Parser(expression)
    root = parser.parse()
    return SqlFilter(expression, _compile(root), frozenset(parser.names))


# ---------------------------------------------------------------------------------------------
# Lexer


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "int", "float", "str", "id", "kw", "op" or "eof"
    text: str  # the source text; keywords upper-cased
    pos: int
    end: int
    value: object = None  # the literal's value


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
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
            if value > _LONG_MAX:
                raise SqlFilterError(f"integer {text} is too large (the limit is {_LONG_MAX})", pos, expression)
        elif kind == "float":
            value = float(text)
            if math.isinf(value):
                raise SqlFilterError(f"number {text} is too large for a double", pos, expression)
        elif kind == "str":
            value = text[1:-1].replace("''", "'")
        elif kind == "id" and text.upper() in _KEYWORDS:
            kind, text = "kw", text.upper()
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, text, pos, end, value))
        pos = end
    tokens.append(_Token("eof", "", length, length))
    return tokens


def _describe(token: _Token) -> str:
    if token.kind == "eof":
        return "end of expression"
    text = token.text if len(token.text) <= 30 else token.text[:27] + "..."
    return text if token.kind == "str" else f"'{text}'"


# ---------------------------------------------------------------------------------------------
# Parser: tokens to a tree of _Node, with the reference's checks


@dataclass(frozen=True, slots=True)
class _Node:
    op: str  # "const" "prop" "neg" "cast" "not" "and" "or" "eq" "cmp" "isnull" "in" "match"
    pos: int
    end: int
    children: tuple[_Node, ...] = ()
    depth: int = 1
    value: object = None  # const: the literal (None for NULL)
    name: str = ""  # prop, cast, in: the property
    symbol: str = ""  # cmp: > >= < <=; match: CONTAINS STARTSWITH ENDSWITH
    search: str = ""  # match: the literal
    items: frozenset[str] = frozenset()  # in: the list
    negate: bool = False  # in, match: the NOT form


_BOOLEAN_OPS: Final = frozenset({"cast", "not", "and", "or", "eq", "cmp", "isnull", "in", "match"})


def _is_boolean(node: _Node) -> bool:
    """The reference's ``instanceof BooleanExpression``: TRUE, FALSE, NULL and every test."""
    return node.op in _BOOLEAN_OPS or (node.op == "const" and (node.value is None or type(node.value) is bool))


class _Parser:
    def __init__(self, expression: str) -> None:
        self._expression = expression
        self._tokens = _tokenize(expression)
        self._index = 0
        self._nesting = 0
        self.names: set[str] = set()

    # -- helpers

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "eof":
            self._index += 1
        return token

    @staticmethod
    def _is_kw(token: _Token, *words: str) -> bool:
        return token.kind == "kw" and token.text in words

    @staticmethod
    def _is_op(token: _Token, *ops: str) -> bool:
        return token.kind == "op" and token.text in ops

    def _error(self, message: str, pos: int) -> SqlFilterError:
        return SqlFilterError(message, pos, self._expression)

    def _unexpected(self, token: _Token, expected: str = "") -> SqlFilterError:
        message = f"unexpected {_describe(token)}"
        return self._error(f"{message}, expected {expected}" if expected else message, token.pos)

    def _source(self, node: _Node) -> str:
        text = self._expression[node.pos : node.end]
        return text if len(text) <= 30 else text[:27] + "..."

    def _node(
        self,
        op: str,
        start: _Node | _Token,
        end: _Node | _Token,
        *children: _Node,
        value: object = None,
        name: str = "",
        symbol: str = "",
        search: str = "",
        items: frozenset[str] = frozenset(),
        negate: bool = False,
    ) -> _Node:
        depth = 1 + max((child.depth for child in children), default=0)
        if depth > MAX_DEPTH:
            raise self._error("expression is nested too deeply", start.pos)
        return _Node(op, start.pos, end.end, children, depth, value, name, symbol, search, items, negate)

    def _enter(self, token: _Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise self._error("expression is nested too deeply", token.pos)

    def _as_boolean(self, node: _Node) -> _Node:
        if _is_boolean(node):
            return node
        if node.op == "prop":
            return self._node("cast", node, node, node, name=node.name)
        raise self._error(f"{self._source(node)} is not a boolean expression", node.pos)

    def _string(self, after: str) -> str:
        token = self._peek()
        if token.kind != "str":
            raise self._unexpected(token, f"a string literal after {after}")
        self._advance()
        assert isinstance(token.value, str)
        return token.value

    # -- grammar, loosest first

    def parse(self) -> _Node:
        if self._peek().kind == "eof":
            raise self._error("empty expression", 0)
        node = self._or()
        token = self._peek()
        # A "--" comment that the end of the input (not a line break) closes lexes as two minus
        # signs, as in the reference; it is still a comment, so it is not trailing garbage.
        if token.kind != "eof" and not self._expression.startswith("--", token.pos):
            raise self._unexpected(token)
        return self._as_boolean(node)

    def _or(self) -> _Node:
        left = self._and()
        while self._is_kw(self._peek(), "OR"):
            self._advance()
            right = self._and()
            left = self._logic("or", self._as_boolean(left), self._as_boolean(right))
        return left

    def _and(self) -> _Node:
        left = self._equality()
        while self._is_kw(self._peek(), "AND"):
            self._advance()
            right = self._equality()
            left = self._logic("and", self._as_boolean(left), self._as_boolean(right))
        return left

    def _logic(self, op: str, left: _Node, right: _Node) -> _Node:
        # AND and OR are associative, also in three-valued logic with left-to-right short-circuits,
        # so chains are flattened: evaluation then loops instead of recursing once per term.
        terms = (left.children if left.op == op else (left,)) + (right.children if right.op == op else (right,))
        return self._node(op, left, right, *terms)

    def _equality(self) -> _Node:
        left = self._comparison()
        while True:
            token = self._peek()
            if self._is_op(token, "=", "<>"):
                self._advance()
                right = self._comparison()
                for side in (left, right):
                    if side.op == "const" and side.value is None:
                        raise self._error(f"NULL cannot be compared with '{token.text}', use IS [NOT] NULL", side.pos)
                if left.op == right.op == "const" and _is_boolean(left) and not _is_boolean(right):
                    raise self._error(f"{self._source(left)} cannot be compared with {self._source(right)}", token.pos)
                equal = self._node("eq", left, right, left, right)
                left = self._node("not", equal, equal, equal) if token.text == "<>" else equal
            elif self._is_kw(token, "IS"):
                self._advance()
                negate = self._is_kw(self._peek(), "NOT")
                if negate:
                    self._advance()
                null = self._peek()
                if not self._is_kw(null, "NULL"):
                    raise self._unexpected(null, "NULL after IS NOT" if negate else "NULL or NOT NULL after IS")
                self._advance()
                test = self._node("isnull", left, null, left)
                left = self._node("not", test, test, test) if negate else test
            else:
                return left

    def _comparison(self) -> _Node:
        left = self._unary()
        while True:
            token = self._peek()
            negate = self._is_kw(token, "NOT")
            keyword = self._peek(1) if negate else token
            if self._is_op(token, ">", ">=", "<", "<="):
                self._advance()
                right = self._unary()
                self._check_ordered(left, token.text)
                self._check_ordered(right, token.text)
                left = self._node("cmp", left, right, left, right, symbol=token.text)
            elif self._is_kw(keyword, *_STRING_TESTS):
                self._index += 2 if negate else 1
                search = self._string(keyword.text)
                last = self._tokens[self._index - 1]
                left = self._node("match", left, last, left, symbol=keyword.text, search=search, negate=negate)
            elif self._is_kw(keyword, "BETWEEN"):
                self._index += 2 if negate else 1
                left = self._between(left, negate)
            elif self._is_kw(keyword, "IN"):
                self._index += 2 if negate else 1
                left = self._in(left, negate)
            elif negate:
                raise self._unexpected(keyword, "BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT")
            else:
                return left

    def _check_ordered(self, node: _Node, operator: str) -> None:
        """The reference's checkLessThanOperand: only numbers, properties and negations are ordered."""
        if node.op == "const" and type(node.value) not in (int, float):
            raise self._error(f"{self._source(node)} cannot be compared with {operator}, only numbers can", node.pos)
        if _is_boolean(node):
            raise self._error(f"the boolean {self._source(node)} cannot be compared with {operator}", node.pos)

    def _between(self, value: _Node, negate: bool) -> _Node:
        operator = "NOT BETWEEN" if negate else "BETWEEN"
        low = self._unary()
        token = self._peek()
        if not self._is_kw(token, "AND"):
            raise self._unexpected(token, f"AND in {operator}")
        self._advance()
        high = self._unary()
        literal_bounds = low.op == high.op == "const"
        if literal_bounds and not negate:
            for bound in (low, high):
                if bound.value is None:
                    raise self._error("BETWEEN bounds cannot be NULL", bound.pos)
        for side in (value, low, high):
            self._check_ordered(side, operator)
        if literal_bounds and not negate and _compare(high.value, low.value) < 0:
            raise self._error(
                f"BETWEEN bounds are reversed: {self._source(low)} is greater than {self._source(high)}", low.pos
            )
        if negate:
            below = self._node("cmp", value, low, value, low, symbol="<")
            above = self._node("cmp", value, high, value, high, symbol=">")
            return self._node("or", value, high, below, above)
        over = self._node("cmp", value, low, value, low, symbol=">=")
        under = self._node("cmp", value, high, value, high, symbol="<=")
        return self._node("and", value, high, over, under)

    def _in(self, value: _Node, negate: bool) -> _Node:
        operator = "NOT IN" if negate else "IN"
        token = self._peek()
        if not self._is_op(token, "("):
            raise self._unexpected(token, f"'(' after {operator}")
        self._advance()
        items = [self._string(f"{operator} (")]
        while self._is_op(self._peek(), ","):
            self._advance()
            items.append(self._string("','"))
        close = self._peek()
        if not self._is_op(close, ")"):
            raise self._unexpected(close, "',' or ')'")
        self._advance()
        if value.op != "prop":
            raise self._error(f"{operator} needs a property name on its left, not {self._source(value)}", value.pos)
        return self._node("in", value, close, value, name=value.name, items=frozenset(items), negate=negate)

    def _unary(self) -> _Node:
        token = self._peek()
        if not (self._is_op(token, "+", "-") or self._is_kw(token, "NOT")):
            return self._primary()
        self._enter(token)
        self._advance()
        operand = self._unary()
        self._nesting -= 1
        if token.text == "+":
            return replace(operand, pos=token.pos)
        if token.text == "-":
            return self._node("neg", token, operand, operand)
        return self._node("not", token, operand, self._as_boolean(operand))

    def _primary(self) -> _Node:
        token = self._peek()
        if token.kind in ("int", "float", "str"):
            self._advance()
            return self._node("const", token, token, value=token.value)
        if self._is_kw(token, "TRUE", "FALSE", "NULL"):
            self._advance()
            return self._node("const", token, token, value={"TRUE": True, "FALSE": False}.get(token.text))
        if token.kind == "id":
            self._advance()
            self.names.add(token.text)
            return self._node("prop", token, token, name=token.text)
        if self._is_op(token, "("):
            self._enter(token)
            self._advance()
            inner = self._or()
            close = self._peek()
            if not self._is_op(close, ")"):
                raise self._unexpected(close, "')'")
            self._advance()
            self._nesting -= 1
            return replace(inner, pos=token.pos, end=close.end)
        raise self._unexpected(token, "a property name, a literal or '('")


# ---------------------------------------------------------------------------------------------
# Values: Java's conversions and comparisons


def _to_long(text: str) -> int:
    """Java's Long.valueOf, raising _EvalError where Java throws."""
    if _LONG_TEXT.fullmatch(text) is None:
        raise _EvalError(text)
    try:
        value = int(text)
    except ValueError:  # only beyond Python's digit limit
        raise _EvalError(text) from None
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise _EvalError(text)
    return value


def _to_double(text: str) -> float:
    """Java's Double.valueOf, raising _EvalError where Java throws."""
    match = _DOUBLE_TEXT.fullmatch(text.strip(_JAVA_TRIM))
    if match is None:
        raise _EvalError(text)
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


def _compare_doubles(x: float, y: float) -> int:
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


def _compare(left: object, right: object) -> int:
    """The reference's ComparisonExpression.__compare (string conversion on), for non-NULL values.

    Mixed types convert the string side to the other side's type; a failed conversion raises.
    """
    if type(left) is str:
        if type(right) is str:
            return (left > right) - (left < right)
        if type(right) is int:
            number = _to_long(left)
            return (number > right) - (number < right)
        if type(right) is float:
            return _compare_doubles(_to_double(left), right)
        if type(right) is bool:
            flag = left.lower() == "true"
            return (flag > right) - (flag < right)
    elif type(left) is int:
        if type(right) is int:
            return (left > right) - (left < right)
        if type(right) is float:
            return _compare_doubles(float(left), right)
        if type(right) is str:
            number = _to_long(right)
            return (left > number) - (left < number)
        return -1
    elif type(left) is float:
        if type(right) is float:
            return _compare_doubles(left, right)
        if type(right) is int:
            return _compare_doubles(left, float(right))
        if type(right) is str:
            return _compare_doubles(left, _to_double(right))
        return -1
    elif type(left) is bool:
        if type(right) is bool:
            return (left > right) - (left < right)
        if type(right) is str:  # the reference casts the Boolean to String: ClassCastException
            raise _EvalError(right)
        return -1
    raise _EvalError(f"cannot compare {left!r} with {right!r}")


_ORDER_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def _fold(node: _Node) -> tuple[bool, object]:
    """(True, value) when the node is a literal or a negated literal, else (False, None)."""
    if node.op == "const":
        return True, node.value
    if node.op == "neg":
        known, value = _fold(node.children[0])
        if known:
            return True, -value if type(value) is int or type(value) is float else None
    return False, None


# ---------------------------------------------------------------------------------------------
# Compiler: _Node to closures


def _compile(node: _Node) -> _Eval:
    compiler = _COMPILERS[node.op]
    return compiler(node)


def _compile_const(node: _Node) -> _Eval:
    value = node.value
    return lambda _props: value


def _compile_prop(node: _Node) -> _Eval:
    name = node.name
    return lambda props: props.get(name)


def _compile_neg(node: _Node) -> _Eval:
    known, value = _fold(node)
    if known:
        return lambda _props: value
    operand = _compile(node.children[0])

    def negate(props: Properties) -> object:
        value = operand(props)
        if type(value) is int or type(value) is float:
            return -value
        return None

    return negate


def _compile_cast(node: _Node) -> _Eval:
    name = node.name

    def cast(props: Properties) -> object:
        return None if props.get(name) is None else False

    return cast


def _compile_not(node: _Node) -> _Eval:
    operand = _compile(node.children[0])

    def not_(props: Properties) -> object:
        value = operand(props)
        return None if value is None else not value

    return not_


def _compile_and(node: _Node) -> _Eval:
    terms = tuple(_compile(child) for child in node.children)

    def and_(props: Properties) -> object:
        unknown = False
        for term in terms:
            value = term(props)
            if value is False:
                return False
            if value is None:
                unknown = True
        return None if unknown else True

    return and_


def _compile_or(node: _Node) -> _Eval:
    terms = tuple(_compile(child) for child in node.children)

    def or_(props: Properties) -> object:
        unknown = False
        for term in terms:
            value = term(props)
            if value is True:
                return True
            if value is None:
                unknown = True
        return None if unknown else False

    return or_


def _compile_eq(node: _Node) -> _Eval:
    left, right = node.children
    left_known, left_value = _fold(left)
    right_known, right_value = _fold(right)
    if left.op == "prop" and right_known and right_value is not None:
        return _property_equals(left.name, right_value, constant_first=False)
    if right.op == "prop" and left_known and type(left_value) in (str, int, float):
        return _property_equals(right.name, left_value, constant_first=True)
    left_eval, right_eval = _compile(left), _compile(right)

    def equal(props: Properties) -> object:
        lv, rv = left_eval(props), right_eval(props)
        if lv is None:
            return True if rv is None else None
        if rv is None:
            return False
        return _compare(lv, rv) == 0

    return equal


def _property_equals(name: str, constant: object, *, constant_first: bool) -> _Eval:
    """``prop = literal`` (NULL when missing) or ``literal = prop`` (FALSE when missing)."""
    missing = False if constant_first else None
    if type(constant) is str:
        text = constant

        def equal_text(props: Properties) -> object:
            value = props.get(name)
            return missing if value is None else value == text

        return equal_text
    if type(constant) is int:
        integer = constant

        def equal_long(props: Properties) -> object:
            value = props.get(name)
            return missing if value is None else _to_long(value) == integer

        return equal_long
    if type(constant) is float:
        double = constant

        def equal_double(props: Properties) -> object:
            value = props.get(name)
            return missing if value is None else _compare_doubles(_to_double(value), double) == 0

        return equal_double
    flag = constant is True  # prop = TRUE / FALSE: Boolean.valueOf(prop)

    def equal_flag(props: Properties) -> object:
        value = props.get(name)
        return missing if value is None else (value.lower() == "true") is flag

    return equal_flag


def _compile_cmp(node: _Node) -> _Eval:
    left, right = node.children
    test = _ORDER_TESTS[node.symbol]
    left_known, left_value = _fold(left)
    right_known, right_value = _fold(right)
    if left.op == "prop" and right_known and type(right_value) in (int, float):
        return _property_ordered(left.name, right_value, test, constant_first=False)
    if right.op == "prop" and left_known and type(left_value) in (int, float):
        return _property_ordered(right.name, left_value, test, constant_first=True)
    left_eval, right_eval = _compile(left), _compile(right)

    def ordered(props: Properties) -> object:
        lv = left_eval(props)
        if lv is None:
            return None
        rv = right_eval(props)
        if rv is None:
            return None
        if type(lv) is str and type(rv) is str:  # two properties: both must be doubles
            return test(_compare_doubles(_to_double(lv), _to_double(rv)))
        return test(_compare(lv, rv))

    return ordered


def _property_ordered(name: str, constant: object, test: Callable[[int], bool], *, constant_first: bool) -> _Eval:
    """``prop > number`` or ``number > prop``: NULL when the property is missing."""
    sign = -1 if constant_first else 1
    if type(constant) is int:
        integer = constant

        def ordered_long(props: Properties) -> object:
            value = props.get(name)
            if value is None:
                return None
            number = _to_long(value)
            return test(sign * ((number > integer) - (number < integer)))

        return ordered_long
    assert type(constant) is float
    double = constant

    def ordered_double(props: Properties) -> object:
        value = props.get(name)
        if value is None:
            return None
        return test(sign * _compare_doubles(_to_double(value), double))

    return ordered_double


def _compile_isnull(node: _Node) -> _Eval:
    operand = _compile(node.children[0])
    return lambda props: operand(props) is None


def _compile_in(node: _Node) -> _Eval:
    name, items, negate = node.name, node.items, node.negate

    def in_(props: Properties) -> object:
        value = props.get(name)
        return None if value is None else (value in items) is not negate

    return in_


def _compile_match(node: _Node) -> _Eval:
    search, negate = node.search, node.negate
    if not search:  # the reference answers FALSE before looking at the operand
        return lambda _props: False
    operand = _compile(node.children[0])
    tests: dict[str, Callable[[str], bool]] = {
        "CONTAINS": lambda value: search in value,
        "STARTSWITH": lambda value: value.startswith(search),
        "ENDSWITH": lambda value: value.endswith(search),
    }
    test = tests[node.symbol]

    def match(props: Properties) -> object:
        value = operand(props)
        if type(value) is not str:
            return False
        return test(value) is not negate

    return match


_COMPILERS: Final[dict[str, Callable[[_Node], _Eval]]] = {
    "const": _compile_const,
    "prop": _compile_prop,
    "neg": _compile_neg,
    "cast": _compile_cast,
    "not": _compile_not,
    "and": _compile_and,
    "or": _compile_or,
    "eq": _compile_eq,
    "cmp": _compile_cmp,
    "isnull": _compile_isnull,
    "in": _compile_in,
    "match": _compile_match,
}
