"""The SQL92 filter's compiler: a checked :class:`Node` tree to closures that evaluate one message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from rmqproxy.sql92.parser import Node
from rmqproxy.sql92.values import compare, compare_doubles, to_double, to_long

Properties = Mapping[str, str]
Eval = Callable[[Properties], object]
"""A compiled node: the Java value it stands for, as None (NULL), bool, int (long), float (double) or str."""

_ORDER_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def _fold(node: Node) -> tuple[bool, object]:
    """(True, value) when the node is a literal or a negated literal, else (False, None)."""
    if node.op == "const":
        return True, node.value
    if node.op == "neg":
        known, value = _fold(node.children[0])
        if known:
            return True, -value if type(value) is int or type(value) is float else None
    return False, None


def compile_node(node: Node) -> Eval:
    compiler = _COMPILERS[node.op]
    return compiler(node)


def _compile_const(node: Node) -> Eval:
    value = node.value
    return lambda _props: value


def _compile_prop(node: Node) -> Eval:
    name = node.name
    return lambda props: props.get(name)


def _compile_neg(node: Node) -> Eval:
    known, value = _fold(node)
    if known:
        return lambda _props: value
    operand = compile_node(node.children[0])

    def negate(props: Properties) -> object:
        value = operand(props)
        if type(value) is int or type(value) is float:
            return -value
        return None

    return negate


def _compile_cast(node: Node) -> Eval:
    name = node.name

    def cast(props: Properties) -> object:
        return None if props.get(name) is None else False

    return cast


def _compile_not(node: Node) -> Eval:
    operand = compile_node(node.children[0])

    def not_(props: Properties) -> object:
        value = operand(props)
        return None if value is None else not value

    return not_


def _compile_and(node: Node) -> Eval:
    terms = tuple(compile_node(child) for child in node.children)

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


def _compile_or(node: Node) -> Eval:
    terms = tuple(compile_node(child) for child in node.children)

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


def _compile_eq(node: Node) -> Eval:
    left, right = node.children
    left_known, left_value = _fold(left)
    right_known, right_value = _fold(right)
    if left.op == "prop" and right_known and right_value is not None:
        return _property_equals(left.name, right_value, constant_first=False)
    if right.op == "prop" and left_known and type(left_value) in (str, int, float):
        return _property_equals(right.name, left_value, constant_first=True)
    left_eval, right_eval = compile_node(left), compile_node(right)

    def equal(props: Properties) -> object:
        lv, rv = left_eval(props), right_eval(props)
        if lv is None:
            return True if rv is None else None
        if rv is None:
            return False
        return compare(lv, rv) == 0

    return equal


def _property_equals(name: str, constant: object, *, constant_first: bool) -> Eval:
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
            return missing if value is None else to_long(value) == integer

        return equal_long
    if type(constant) is float:
        double = constant

        def equal_double(props: Properties) -> object:
            value = props.get(name)
            return missing if value is None else compare_doubles(to_double(value), double) == 0

        return equal_double
    flag = constant is True  # prop = TRUE / FALSE: Boolean.valueOf(prop)

    def equal_flag(props: Properties) -> object:
        value = props.get(name)
        return missing if value is None else (value.lower() == "true") is flag

    return equal_flag


def _compile_cmp(node: Node) -> Eval:
    left, right = node.children
    test = _ORDER_TESTS[node.symbol]
    left_known, left_value = _fold(left)
    right_known, right_value = _fold(right)
    if left.op == "prop" and right_known and type(right_value) in (int, float):
        return _property_ordered(left.name, right_value, test, constant_first=False)
    if right.op == "prop" and left_known and type(left_value) in (int, float):
        return _property_ordered(right.name, left_value, test, constant_first=True)
    left_eval, right_eval = compile_node(left), compile_node(right)

    def ordered(props: Properties) -> object:
        lv = left_eval(props)
        if lv is None:
            return None
        rv = right_eval(props)
        if rv is None:
            return None
        if type(lv) is str and type(rv) is str:  # two properties: both must be doubles
            return test(compare_doubles(to_double(lv), to_double(rv)))
        return test(compare(lv, rv))

    return ordered


def _property_ordered(name: str, constant: object, test: Callable[[int], bool], *, constant_first: bool) -> Eval:
    """``prop > number`` or ``number > prop``: NULL when the property is missing."""
    sign = -1 if constant_first else 1
    if type(constant) is int:
        integer = constant

        def ordered_long(props: Properties) -> object:
            value = props.get(name)
            if value is None:
                return None
            number = to_long(value)
            return test(sign * ((number > integer) - (number < integer)))

        return ordered_long
    assert type(constant) is float
    double = constant

    def ordered_double(props: Properties) -> object:
        value = props.get(name)
        if value is None:
            return None
        return test(sign * compare_doubles(to_double(value), double))

    return ordered_double


def _compile_isnull(node: Node) -> Eval:
    operand = compile_node(node.children[0])
    return lambda props: operand(props) is None


def _compile_in(node: Node) -> Eval:
    name, items, negate = node.name, node.items, node.negate

    def in_(props: Properties) -> object:
        value = props.get(name)
        return None if value is None else (value in items) is not negate

    return in_


def _compile_match(node: Node) -> Eval:
    search, negate = node.search, node.negate
    if not search:  # the reference answers FALSE before looking at the operand
        return lambda _props: False
    operand = compile_node(node.children[0])
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


_COMPILERS: Final[dict[str, Callable[[Node], Eval]]] = {
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
