"""The SQL92 filter's parser: tokens to a tree of :class:`Node`, with the reference's checks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from rmqproxy.sql92.errors import SqlFilterError
from rmqproxy.sql92.lexer import STRING_TESTS, Token, describe, tokenize
from rmqproxy.sql92.values import compare

MAX_DEPTH: Final = 64
"""How deeply parentheses and unary operators may nest, and how deep the expression tree may be."""


@dataclass(frozen=True, slots=True)
class Node:
    op: str  # "const" "prop" "neg" "cast" "not" "and" "or" "eq" "cmp" "isnull" "in" "match"
    pos: int
    end: int
    children: tuple[Node, ...] = ()
    depth: int = 1
    value: object = None  # const: the literal (None for NULL)
    name: str = ""  # prop, cast, in: the property
    symbol: str = ""  # cmp: > >= < <=; match: CONTAINS STARTSWITH ENDSWITH
    search: str = ""  # match: the literal
    items: frozenset[str] = frozenset()  # in: the list
    negate: bool = False  # in, match: the NOT form


_BOOLEAN_OPS: Final = frozenset({"cast", "not", "and", "or", "eq", "cmp", "isnull", "in", "match"})


def _is_boolean(node: Node) -> bool:
    """The reference's ``instanceof BooleanExpression``: TRUE, FALSE, NULL and every test."""
    return node.op in _BOOLEAN_OPS or (node.op == "const" and (node.value is None or type(node.value) is bool))


class Parser:
    def __init__(self, expression: str) -> None:
        self._expression = expression
        self._tokens = tokenize(expression)
        self._index = 0
        self._nesting = 0
        self.names: set[str] = set()

    # -- helpers

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind != "eof":
            self._index += 1
        return token

    @staticmethod
    def _is_kw(token: Token, *words: str) -> bool:
        return token.kind == "kw" and token.text in words

    @staticmethod
    def _is_op(token: Token, *ops: str) -> bool:
        return token.kind == "op" and token.text in ops

    def _error(self, message: str, pos: int) -> SqlFilterError:
        return SqlFilterError(message, pos, self._expression)

    def _unexpected(self, token: Token, expected: str = "") -> SqlFilterError:
        message = f"unexpected {describe(token)}"
        return self._error(f"{message}, expected {expected}" if expected else message, token.pos)

    def _source(self, node: Node) -> str:
        text = self._expression[node.pos : node.end]
        return text if len(text) <= 30 else text[:27] + "..."

    def _node(
        self,
        op: str,
        start: Node | Token,
        end: Node | Token,
        *children: Node,
        value: object = None,
        name: str = "",
        symbol: str = "",
        search: str = "",
        items: frozenset[str] = frozenset(),
        negate: bool = False,
    ) -> Node:
        depth = 1 + max((child.depth for child in children), default=0)
        if depth > MAX_DEPTH:
            raise self._error("expression is nested too deeply", start.pos)
        return Node(op, start.pos, end.end, children, depth, value, name, symbol, search, items, negate)

    def _enter(self, token: Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise self._error("expression is nested too deeply", token.pos)

    def _as_boolean(self, node: Node) -> Node:
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

    def parse(self) -> Node:
        if self._peek().kind == "eof":
            raise self._error("empty expression", 0)
        node = self._or()
        token = self._peek()
        # A "--" comment that the end of the input (not a line break) closes lexes as two minus
        # signs, as in the reference; it is still a comment, so it is not trailing garbage.
        if token.kind != "eof" and not self._expression.startswith("--", token.pos):
            raise self._unexpected(token)
        return self._as_boolean(node)

    def _or(self) -> Node:
        left = self._and()
        while self._is_kw(self._peek(), "OR"):
            self._advance()
            right = self._and()
            left = self._logic("or", self._as_boolean(left), self._as_boolean(right))
        return left

    def _and(self) -> Node:
        left = self._equality()
        while self._is_kw(self._peek(), "AND"):
            self._advance()
            right = self._equality()
            left = self._logic("and", self._as_boolean(left), self._as_boolean(right))
        return left

    def _logic(self, op: str, left: Node, right: Node) -> Node:
        # AND and OR are associative, also in three-valued logic with left-to-right short-circuits,
        # so chains are flattened: evaluation then loops instead of recursing once per term.
        terms = (left.children if left.op == op else (left,)) + (right.children if right.op == op else (right,))
        return self._node(op, left, right, *terms)

    def _equality(self) -> Node:
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

    def _comparison(self) -> Node:
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
            elif self._is_kw(keyword, *STRING_TESTS):
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

    def _check_ordered(self, node: Node, operator: str) -> None:
        """The reference's checkLessThanOperand: only numbers, properties and negations are ordered."""
        if node.op == "const" and type(node.value) not in (int, float):
            raise self._error(f"{self._source(node)} cannot be compared with {operator}, only numbers can", node.pos)
        if _is_boolean(node):
            raise self._error(f"the boolean {self._source(node)} cannot be compared with {operator}", node.pos)

    def _between(self, value: Node, negate: bool) -> Node:
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
        if literal_bounds and not negate and compare(high.value, low.value) < 0:
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

    def _in(self, value: Node, negate: bool) -> Node:
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

    def _unary(self) -> Node:
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

    def _primary(self) -> Node:
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
