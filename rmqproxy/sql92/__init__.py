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

The package's modules: ``lexer`` (text to tokens), ``parser`` (tokens to a checked tree), ``compiler``
(tree to closures), ``values`` (Java's conversions and comparisons), ``errors``.
"""

from __future__ import annotations

from rmqproxy.sql92.compiler import Eval, Properties, compile_node
from rmqproxy.sql92.errors import EvalError, SqlFilterError
from rmqproxy.sql92.parser import MAX_DEPTH, Parser

__all__ = ["MAX_DEPTH", "SqlFilter", "SqlFilterError", "compile_sql"]


class SqlFilter:
    """A compiled SQL92 filter: immutable, cheap to call, safe to share between threads."""

    __slots__ = ("_evaluate", "expression", "properties")

    expression: str
    """The source expression."""
    properties: frozenset[str]
    """The property names the expression reads (``TAGS`` included when it tests the tag)."""

    def __init__(self, expression: str, evaluate: Eval, properties: frozenset[str]) -> None:
        self.expression = expression
        self.properties = properties
        self._evaluate = evaluate

    def matches(self, properties: Properties) -> bool:
        """Whether a message with these user properties (tag under ``TAGS``) passes the filter."""
        try:
            return self._evaluate(properties) is True
        except EvalError:
            return False

    def __repr__(self) -> str:
        return f"SqlFilter({self.expression!r})"


def compile_sql(expression: str) -> SqlFilter:
    """Parse and check ``expression`` once; raise :class:`SqlFilterError` if it is not valid."""
    parser = Parser(expression)
    root = parser.parse()
    return SqlFilter(expression, compile_node(root), frozenset(parser.names))
