"""The SQL92 filter dialect, checked row by row against the reference's rules (see rmqproxy/sql92/__init__.py)."""

from __future__ import annotations

import pytest

from rmqproxy.sql92 import MAX_DEPTH, SqlFilterError, compile_sql

NONE: dict[str, str] = {}

# expression, message properties, expected match. Every expression that reads properties has at
# least one row where they are all present and one where some are missing (test_table_coverage).
MATCHES: list[tuple[str, dict[str, str], bool]] = [
    # --- string equality
    ("a = 'x'", {"a": "x"}, True),
    ("a = 'x'", {"a": "y"}, False),
    ("a = 'x'", {"a": "X"}, False),
    ("a = 'x'", NONE, False),
    ("a <> 'x'", {"a": "y"}, True),
    ("a <> 'x'", {"a": "x"}, False),
    ("a <> 'x'", NONE, False),  # NULL <> 'x' is NULL
    ("'x' = a", {"a": "x"}, True),
    ("'x' = a", NONE, False),
    ("'x' <> a", {"a": "y"}, True),
    ("'x' <> a", NONE, True),  # literal = NULL is FALSE (not NULL), so <> is TRUE
    ("a = b", {"a": "1", "b": "1"}, True),
    ("a = b", {"a": "1", "b": "01"}, False),  # two strings compare as text
    ("a = b", {"a": "1"}, False),
    ("a = b", NONE, True),  # NULL = NULL is TRUE in the reference
    ("a <> b", {"a": "3.14", "b": "3.141"}, True),
    ("a <> b", {"a": "3.14", "b": "3.14"}, False),
    ("a <> b", {"a": "1"}, True),  # 'x' = NULL is FALSE
    ("a <> b", {"b": "1"}, False),  # NULL = 'x' is NULL
    ("a <> b", NONE, False),
    ("a = 'it''s'", {"a": "it's"}, True),
    ("a = 'it''s'", {"a": "its"}, False),
    ("a = 'it''s'", NONE, False),
    ("TAGS='''''tag'''''", {"TAGS": "''tag''"}, True),
    ("TAGS='''''tag'''''", NONE, False),
    ("a = ''", {"a": ""}, True),
    ("a = ''", {"a": " "}, False),
    ("a = ''", NONE, False),
    ("TAGS = 'TagA'", {"TAGS": "TagA"}, True),
    ("TAGS = 'TagA'", {"TAGS": "taga"}, False),
    ("TAGS = 'TagA'", {"a": "TagA"}, False),
    ("a = 'line1\nline2'", {"a": "line1\nline2"}, True),
    ("a = 'line1\nline2'", NONE, False),
    # --- numbers: a property compared with an integer literal is parsed as a Java long
    ("a = 5", {"a": "5"}, True),
    ("a = 5", {"a": "05"}, True),
    ("a = 5", {"a": "+5"}, True),
    ("a = 5", {"a": "-5"}, False),
    ("a = 5", {"a": "5.0"}, False),  # not a long: the message is rejected
    ("a = 5", {"a": " 5"}, False),
    ("a = 5", {"a": "abc"}, False),
    ("a = 5", NONE, False),
    ("a <> 5", {"a": "6"}, True),
    ("a <> 5", {"a": "5"}, False),
    ("a <> 5", {"a": "abc"}, False),  # a failed conversion rejects the message, NOT or not
    ("a <> 5", NONE, False),
    ("a > 5", {"a": "6"}, True),
    ("a > 5", {"a": "5"}, False),
    ("a > 5", {"a": "3000000000"}, True),  # beyond 32 bits: works here (the reference fails)
    ("a > 5", {"a": "99999999999999999999"}, False),  # beyond a long
    ("a > 5", {"a": "5.5"}, False),
    ("a > 5", {"a": "abc"}, False),
    ("a > 5", NONE, False),
    ("a >= 5", {"a": "5"}, True),
    ("a >= 5", {"a": "4"}, False),
    ("a >= 5", NONE, False),
    ("a < 5", {"a": "4"}, True),
    ("a < 5", {"a": "-10"}, True),
    ("a < 5", {"a": "5"}, False),
    ("a < 5", NONE, False),
    ("a <= 5", {"a": "5"}, True),
    ("a <= 5", {"a": "6"}, False),
    ("a <= 5", NONE, False),
    ("a >= 9223372036854775807", {"a": "9223372036854775807"}, True),
    ("a >= 9223372036854775807", {"a": "9223372036854775808"}, False),
    ("a >= 9223372036854775807", NONE, False),
    ("a = 5L", {"a": "5"}, True),
    ("a = 5L", NONE, False),
    ("5 < a", {"a": "6"}, True),
    ("5 < a", {"a": "5"}, False),
    ("5 < a", NONE, False),
    ("5.5 >= a", {"a": "5"}, True),
    ("5.5 >= a", {"a": "6"}, False),
    ("5.5 >= a", NONE, False),
    # --- numbers: compared with a decimal literal the property is parsed as a Java double
    ("a = 5.0", {"a": "5"}, True),
    ("a = 5.0", {"a": "5.0"}, True),
    ("a = 5.0", {"a": " 5 "}, True),  # Double.valueOf trims
    ("a = 5.0", {"a": "5e0"}, True),
    ("a = 5.0", {"a": "5d"}, True),
    ("a = 5.0", {"a": "0x1.4p2"}, True),  # hex float: 1.25 * 2^2
    ("a = 5.0", {"a": "abc"}, False),
    ("a = 5.0", NONE, False),
    ("a = 1.5", {"a": "1.50"}, True),
    ("a = 1.5", {"a": "1.5.0"}, False),
    ("a = 1.5", NONE, False),
    ("a > 3.14", {"a": "3.1415"}, True),
    ("a > 3.14", {"a": "3"}, False),
    ("a > 3.14", {"a": "abc"}, False),
    ("a > 3.14", NONE, False),
    ("a > 3.1E10", {"a": "3.1415E10"}, True),
    ("a > 3.1E10", {"a": "31000000000"}, False),
    ("a > 3.1E10", NONE, False),
    ("a > 5.0", {"a": "NaN"}, True),  # Double.compareTo: NaN is above everything
    ("a > 5.0", {"a": "Infinity"}, True),
    ("a > 5.0", {"a": "-Infinity"}, False),
    ("a > 5.0", {"a": "1e400"}, True),
    ("a > 5.0", {"a": "nan"}, False),  # Java spells it NaN
    ("a > 5.0", NONE, False),
    ("a < 5.0", {"a": "NaN"}, False),
    ("a < 5.0", {"a": "4.99"}, True),
    ("a < 5.0", NONE, False),
    ("a = 0.0", {"a": "0"}, True),  # the reference rejects the literal 0.0; accepted here
    ("a = 0.0", {"a": "-0.0"}, False),  # Double.compareTo: -0.0 < 0.0
    ("a = 0.0", NONE, False),
    ("a > 5.", {"a": "5.1"}, True),
    ("a > 5.", {"a": "5"}, False),
    ("a > 5.", NONE, False),
    ("a > .5", {"a": "0.6"}, True),
    ("a > .5", NONE, False),
    ("a = 5e3", {"a": "5000"}, True),
    ("a = 5e3", NONE, False),
    ("a > b", {"a": "20", "b": "10"}, True),
    ("a > b", {"a": "10", "b": "20"}, False),
    ("a > b", {"a": "2.5", "b": "2.25"}, True),  # two properties compare as doubles, not text
    ("a > b", {"a": "b", "b": "a"}, False),
    ("a > b", {"a": "1"}, False),
    ("a > b", NONE, False),
    # --- negative numbers are unary minus; negating a property gives NULL
    ("a > -5", {"a": "-3"}, True),
    ("a > -5", {"a": "-7"}, False),
    ("a > -5", NONE, False),
    ("a > - 5", {"a": "-3"}, True),
    ("a > - 5", NONE, False),
    ("a > -5.5", {"a": "-5"}, True),
    ("a > -5.5", NONE, False),
    ("a = --5", {"a": "5"}, True),  # not a comment: no line break ends it
    ("a = --5", {"a": "-5"}, False),
    ("a = --5", NONE, False),
    ("a = +5", {"a": "5"}, True),
    ("a = +5", NONE, False),
    ("-a IS NULL", {"a": "5"}, True),
    ("-a IS NULL", NONE, True),
    # --- literals only
    ("1 = 1.0", NONE, True),
    ("5 > 3", NONE, True),
    ("1 = TRUE", NONE, False),  # a number never equals a boolean
    ("TRUE", NONE, True),
    ("TRUE", {"a": "1"}, True),
    ("FALSE", NONE, False),
    ("NULL", NONE, False),
    ("NOT TRUE", NONE, False),
    ("NOT FALSE", NONE, True),
    ("NOT NULL", NONE, False),
    ("TRUE = TRUE", NONE, True),
    ("TRUE = FALSE", NONE, False),
    ("NULL IS NULL", NONE, True),
    ("5 IS NULL", NONE, False),
    ("'hello' CONTAINS 'ell'", NONE, True),
    ("5 CONTAINS '5'", NONE, False),  # not a string
    # --- booleans: a property equals TRUE when it is 'true' in any case (Boolean.valueOf)
    ("a = TRUE", {"a": "true"}, True),
    ("a = TRUE", {"a": "TRUE"}, True),
    ("a = TRUE", {"a": "yes"}, False),
    ("a = TRUE", NONE, False),
    ("a = FALSE", {"a": "false"}, True),
    ("a = FALSE", {"a": "no"}, True),
    ("a = FALSE", {"a": "True"}, False),
    ("a = FALSE", NONE, False),
    ("a=TRUE OR b=FALSE", {"a": "true", "b": "false"}, True),
    ("a=TRUE OR b=FALSE", {"a": "false", "b": "true"}, False),
    ("a=TRUE OR b=FALSE", NONE, False),
    ("TRUE = a", {"a": "true"}, False),  # the reference casts TRUE to a string and fails
    ("TRUE = a", NONE, False),
    ("(a > 1) = TRUE", {"a": "2"}, True),
    ("(a > 1) = TRUE", {"a": "0"}, False),
    ("(a > 1) = TRUE", NONE, False),
    ("(a > 1) = (b > 1)", {"a": "2", "b": "3"}, True),
    ("(a > 1) = (b > 1)", {"a": "2", "b": "0"}, False),
    ("(a > 1) = (b > 1)", {"a": "2"}, False),
    ("(a > 1) = (b > 1)", NONE, True),  # NULL = NULL
    ("(a = 'x') = 'x'", {"a": "x"}, False),  # boolean = string fails
    ("(a = 'x') = 'x'", NONE, False),
    # --- a bare property is a boolean: FALSE when present (values are strings), NULL when missing
    ("a", {"a": "true"}, False),
    ("a", NONE, False),
    ("NOT a", {"a": "x"}, True),
    ("NOT a", {"a": ""}, True),
    ("NOT a", NONE, False),
    ("NOT NOT a", {"a": "x"}, False),
    ("NOT NOT a", NONE, False),
    ("a AND b = '1'", {"a": "x", "b": "1"}, False),
    ("a AND b = '1'", NONE, False),
    ("NOT a OR b = '1'", {"a": "x"}, True),
    ("NOT a OR b = '1'", {"b": "1"}, True),
    ("NOT a OR b = '1'", {"a": "x", "b": "1"}, True),
    ("NOT a OR b = '1'", NONE, False),
    # --- unary NOT binds tighter than comparisons
    ("NOT a = 'x'", {"a": "x"}, False),  # (NOT a) = 'x': boolean = string fails
    ("NOT a = 'x'", {"a": "y"}, False),
    ("NOT a = 'x'", NONE, False),
    ("NOT (a = 'x')", {"a": "y"}, True),
    ("NOT (a = 'x')", {"a": "x"}, False),
    ("NOT (a = 'x')", NONE, False),  # NOT NULL is NULL
    ("NOT (a > 5)", {"a": "3"}, True),
    ("NOT (a > 5)", {"a": "7"}, False),
    ("NOT (a > 5)", {"a": "abc"}, False),  # the failed conversion rejects the message
    ("NOT (a > 5)", NONE, False),
    ("NOT a IS NULL", {"a": "x"}, False),  # (NOT a) IS NULL
    ("NOT a IS NULL", NONE, True),
    ("NOT a CONTAINS 'x'", {"a": "x"}, False),  # (NOT a) is not a string
    ("NOT a CONTAINS 'x'", {"a": "y"}, False),
    ("NOT a CONTAINS 'x'", NONE, False),
    # --- AND, OR, precedence, three-valued logic
    ("a=3 and b<>4 And c>5 AND d<=4", {"a": "3", "b": "5", "c": "6", "d": "1"}, True),
    ("a=3 and b<>4 And c>5 AND d<=4", {"a": "4", "b": "5", "c": "6", "d": "1"}, False),
    ("a=3 and b<>4 And c>5 AND d<=4", {"a": "3", "b": "5", "c": "6"}, False),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "3"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "5"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "4", "c": "3", "d": "2"}, True),
    ("a=3 or b<>4 Or c>5 OR d<=4", {"a": "4", "b": "4", "c": "3", "d": "10"}, False),
    ("a=3 or b<>4 Or c>5 OR d<=4", NONE, False),
    ("a > 5 OR b = '1'", {"a": "7"}, True),
    ("a > 5 OR b = '1'", {"b": "1"}, True),  # NULL OR TRUE
    ("a > 5 OR b = '1'", {"a": "abc", "b": "1"}, False),  # a failed conversion rejects the message
    ("a > 5 OR b = '1'", NONE, False),
    ("b = '1' OR a > 5", {"a": "abc", "b": "1"}, True),  # ...unless OR stopped before it
    ("b = '1' OR a > 5", {"a": "abc", "b": "2"}, False),
    ("b = '1' OR a > 5", NONE, False),
    ("a > 5 AND b = '1'", {"a": "7", "b": "1"}, True),
    ("a > 5 AND b = '1'", {"a": "3", "b": "1"}, False),
    ("a > 5 AND b = '1'", {"b": "1"}, False),
    ("a = 1 OR b = 1 AND c = 1", {"a": "1"}, True),  # AND binds tighter than OR
    ("a = 1 OR b = 1 AND c = 1", {"b": "1"}, False),
    ("a = 1 OR b = 1 AND c = 1", {"a": "2", "b": "1", "c": "1"}, True),
    ("(a = 1 OR b = 1) AND c = 1", {"a": "1"}, False),
    ("(a = 1 OR b = 1) AND c = 1", {"a": "1", "b": "2", "c": "1"}, True),
    ("NOT (a = 1 OR b = 1)", {"a": "2", "b": "2"}, True),
    ("NOT (a = 1 OR b = 1)", {"a": "2"}, False),  # FALSE OR NULL is NULL
    ("NOT (a = 1 AND b = 1)", {"a": "2"}, True),  # FALSE AND NULL is FALSE
    ("NOT (a = 1 AND b = 1)", {"a": "1"}, False),  # TRUE AND NULL is NULL
    ("NOT (a = 1 AND b = 1)", {"a": "1", "b": "1"}, False),
    ("a = 1 OR TRUE", NONE, True),
    ("a = 1 OR TRUE", {"a": "1"}, True),
    ("a = 1 AND TRUE", {"a": "1"}, True),
    ("a = 1 AND TRUE", NONE, False),
    ("(a > 1) IS NULL", NONE, True),
    ("(a > 1) IS NULL", {"a": "2"}, False),
    ("a IS NULL OR a = 'hello'", NONE, True),
    ("a IS NULL OR a = 'hello'", {"a": "hello"}, True),
    ("a IS NULL OR a = 'hello'", {"a": "abc"}, False),
    ("a is not null and a='hello'", {"a": "hello"}, True),
    ("a is not null and a='hello'", NONE, False),
    ("a = 1 OR (b = 2 AND (c = 3 OR d = 4))", {"b": "2", "d": "4"}, True),
    ("a = 1 OR (b = 2 AND (c = 3 OR d = 4))", {"a": "0", "b": "2", "c": "0", "d": "0"}, False),
    ("((a = 1))", {"a": "1"}, True),
    ("((a = 1))", NONE, False),
    # --- IS [NOT] NULL
    ("a IS NULL", NONE, True),
    ("a IS NULL", {"abc": "2"}, True),
    ("a IS NULL", {"a": ""}, False),
    ("a IS NOT NULL", {"a": ""}, True),
    ("a IS NOT NULL", NONE, False),
    # --- IN / NOT IN: string literals, NULL when the property is missing
    ("a IN ('3', '4', '5')", {"a": "3"}, True),
    ("a IN ('3', '4', '5')", {"a": "5"}, True),
    ("a IN ('3', '4', '5')", {"a": "8"}, False),
    ("a IN ('3', '4', '5')", {"a": " 3"}, False),
    ("a IN ('3', '4', '5')", NONE, False),
    ("a NOT IN ('3', '4', '5')", {"a": "8"}, True),
    ("a NOT IN ('3', '4', '5')", {"a": "3"}, False),
    ("a NOT IN ('3', '4', '5')", NONE, False),
    ("NOT (a IN ('x'))", {"a": "y"}, True),
    ("NOT (a IN ('x'))", NONE, False),
    ("a IN ('1','2','3','4','5','6')", {"a": "6"}, True),
    ("a IN ('1','2','3','4','5','6')", NONE, False),
    ("a IN ('it''s')", {"a": "it's"}, True),
    ("a IN ('it''s')", NONE, False),
    ("(a) IN ('x')", {"a": "x"}, True),
    ("(a) IN ('x')", NONE, False),
    ("TAGS IN ('TagA', 'TagB') AND region NOT IN ('eu')", {"TAGS": "TagB", "region": "us"}, True),
    ("TAGS IN ('TagA', 'TagB') AND region NOT IN ('eu')", {"TAGS": "TagB", "region": "eu"}, False),
    ("TAGS IN ('TagA', 'TagB') AND region NOT IN ('eu')", {"TAGS": "TagB"}, False),
    # --- BETWEEN / NOT BETWEEN
    ("a between 2 and 10", {"a": "2"}, True),
    ("a between 2 and 10", {"a": "10"}, True),
    ("a between 2 and 10", {"a": "3"}, True),
    ("a between 2 and 10", {"a": "1"}, False),
    ("a between 2 and 10", {"a": "11"}, False),
    ("a between 2 and 10", {"a": "5.5"}, False),  # not a long
    ("a between 2 and 10", {"a": "abc"}, False),
    ("a between 2 and 10", NONE, False),
    ("a not between 2 and 10", {"a": "1"}, True),
    ("a not between 2 and 10", {"a": "11"}, True),
    ("a not between 2 and 10", {"a": "2"}, False),
    ("a not between 2 and 10", {"a": "abc"}, False),
    ("a not between 2 and 10", NONE, False),
    ("NOT (a BETWEEN 2 AND 10)", {"a": "1"}, True),
    ("NOT (a BETWEEN 2 AND 10)", NONE, False),
    ("a BETWEEN 1.5 AND 2.5", {"a": "2"}, True),
    ("a BETWEEN 1.5 AND 2.5", {"a": "2.6"}, False),
    ("a BETWEEN 1.5 AND 2.5", NONE, False),
    ("a BETWEEN -5 AND 5", {"a": "-5"}, True),
    ("a BETWEEN -5 AND 5", {"a": "-6"}, False),
    ("a BETWEEN -5 AND 5", NONE, False),
    ("a BETWEEN 5 AND -5", {"a": "0"}, False),  # negated bounds escape the order check
    ("a BETWEEN 5 AND -5", NONE, False),
    ("a NOT BETWEEN 10 AND 1", {"a": "5"}, True),  # no order check for NOT BETWEEN
    ("a NOT BETWEEN 10 AND 1", NONE, False),
    ("a BETWEEN 5 AND 5", {"a": "5"}, True),
    ("a BETWEEN 5 AND 5", NONE, False),
    ("a between b and c", {"a": "2", "b": "1", "c": "3"}, True),
    ("a between b and c", {"a": "2", "b": "1"}, False),
    ("a BETWEEN 1 AND 10 AND b = 'x'", {"a": "5", "b": "x"}, True),
    ("a BETWEEN 1 AND 10 AND b = 'x'", {"a": "5"}, False),
    # --- CONTAINS / STARTSWITH / ENDSWITH: FALSE, never NULL, without the property
    ("a CONTAINS 'bc'", {"a": "abcd"}, True),
    ("a CONTAINS 'bc'", {"a": "ABCD"}, False),
    ("a CONTAINS 'bc'", NONE, False),
    ("a NOT CONTAINS 'bc'", {"a": "xyz"}, True),
    ("a NOT CONTAINS 'bc'", {"a": "abc"}, False),
    ("a NOT CONTAINS 'bc'", NONE, False),
    ("NOT (a CONTAINS 'bc')", {"a": "abc"}, False),
    ("NOT (a CONTAINS 'bc')", NONE, True),  # NOT FALSE
    ("a CONTAINS ''", {"a": "abc"}, False),  # an empty literal is always FALSE
    ("a CONTAINS ''", NONE, False),
    ("a NOT CONTAINS ''", {"a": "abc"}, False),
    ("a NOT CONTAINS ''", NONE, False),
    ("a contains 'it''s'", {"a": "so it's here"}, True),
    ("a contains 'it''s'", NONE, False),
    ("a STARTSWITH 'ab'", {"a": "abc"}, True),
    ("a STARTSWITH 'ab'", {"a": "xab"}, False),
    ("a STARTSWITH 'ab'", NONE, False),
    ("a NOT STARTSWITH 'ab'", {"a": "xab"}, True),
    ("a NOT STARTSWITH 'ab'", {"a": "abc"}, False),
    ("a NOT STARTSWITH 'ab'", NONE, False),
    ("a ENDSWITH 'cd'", {"a": "abcd"}, True),
    ("a ENDSWITH 'cd'", {"a": "cde"}, False),
    ("a ENDSWITH 'cd'", NONE, False),
    ("a NOT ENDSWITH 'cd'", {"a": "abc"}, True),
    ("a NOT ENDSWITH 'cd'", {"a": "abcd"}, False),
    ("a NOT ENDSWITH 'cd'", NONE, False),
    ("a startsWith 'x' or a endsWith 'y'", {"a": "xa"}, True),
    ("a startsWith 'x' or a endsWith 'y'", {"a": "ay"}, True),
    ("a startsWith 'x' or a endsWith 'y'", {"a": "a"}, False),
    ("a startsWith 'x' or a endsWith 'y'", NONE, False),
    ("(a > 1) CONTAINS 'true'", {"a": "2"}, False),
    ("(a > 1) CONTAINS 'true'", NONE, False),
    # --- lexical details
    ("a = 1 /* a comment */ AND b = 2", {"a": "1", "b": "2"}, True),
    ("a = 1 /* a comment */ AND b = 2", {"a": "1"}, False),
    ("a = 1 -- a comment\nAND b = 2", {"a": "1", "b": "2"}, True),
    ("a = 1 -- a comment\nAND b = 2", {"a": "1"}, False),
    ("a = 1 -- a comment the end of input closes", {"a": "1"}, True),
    ("a = 1 -- a comment the end of input closes", NONE, False),
    ("\ta\n=\r'x'\f", {"a": "x"}, True),
    ("\ta\n=\r'x'\f", NONE, False),
    ("$x_1 = 1", {"$x_1": "1"}, True),
    ("$x_1 = 1", NONE, False),
    ("A = 1", {"A": "1"}, True),
    ("A = 1", {"a": "1"}, False),  # property names are case-sensitive
    ("a=5and b=2", {"a": "5", "b": "2"}, True),  # "5and" is a number then a keyword
    ("a=5and b=2", {"a": "5"}, False),
    ("a = 1 AnD b = 2", {"a": "1", "b": "2"}, True),  # keywords are case-insensitive
    ("a = 1 AnD b = 2", {"b": "2"}, False),
]

# expression, position of the problem, a fragment of the message
ERRORS: list[tuple[str, int, str]] = [
    ("", 0, "empty expression"),
    ("   ", 0, "empty expression"),
    ("/* only a comment */", 0, "empty expression"),
    ("a =", 3, "unexpected end of expression"),
    ("a = 1)", 5, "unexpected ')'"),
    ("(a = 1", 6, "expected ')'"),
    ("a = 1 b = 2", 6, "unexpected 'b'"),  # the reference silently ignores trailing input
    ("a LIKE 'x%'", 2, "unexpected 'LIKE'"),
    ("a = 1 AND", 9, "unexpected end of expression"),
    ("AND a = 1", 0, "unexpected 'AND'"),
    ("in = 1", 0, "unexpected 'IN'"),  # keywords are reserved
    ("a = 'x", 4, "unterminated string literal"),
    ('a = "x"', 4, "unexpected character '\"'"),
    ("a != 1", 2, "unexpected character '!'"),
    ("a == 1", 3, "unexpected '='"),
    ("a > > 1", 4, "unexpected '>'"),
    ("a.b = 1", 1, "unexpected character '.'"),
    ("a-b = 'x'", 1, "unexpected '-'"),
    ("a =\u00a01", 3, "unexpected character"),
    ("a = 1 /* open", 6, "unterminated comment"),
    ("a = 0x1F", 5, "unexpected 'x1F'"),  # no hex literals
    ("a = 017", 5, "unexpected '17'"),  # no octal literals
    ("a = 1.5L", 7, "unexpected 'L'"),
    ("a = 5.5.5", 7, "unexpected '.5'"),
    ("a = 99999999999999999999", 4, "too large"),
    ("a = -9223372036854775808", 5, "too large"),
    ("a = 1e999", 4, "too large for a double"),
    ("a > 'x'", 4, "cannot be compared with >"),
    ("'x' < a", 0, "cannot be compared with <"),
    ("a >= TRUE", 5, "cannot be compared with >="),
    ("a <= NULL", 5, "cannot be compared with <="),
    ("NOT a > 5", 0, "the boolean NOT a cannot be compared"),
    ("a > 1 > 2", 0, "the boolean a > 1 cannot be compared"),
    ("a = NULL", 4, "use IS [NOT] NULL"),
    ("NULL = a", 0, "use IS [NOT] NULL"),
    ("a <> NULL", 5, "NULL cannot be compared with '<>'"),
    ("TRUE = 1", 5, "TRUE cannot be compared with 1"),
    ("FALSE = 'x'", 6, "cannot be compared"),
    ("5", 0, "5 is not a boolean expression"),
    ("'abc'", 0, "is not a boolean expression"),
    ("-a", 0, "-a is not a boolean expression"),
    ("a = 1 AND 5", 10, "5 is not a boolean expression"),
    ("NOT 5", 4, "5 is not a boolean expression"),
    ("a BETWEEN 10 AND 1", 10, "BETWEEN bounds are reversed"),
    ("a BETWEEN 2.5 AND 2", 10, "BETWEEN bounds are reversed"),
    ("a BETWEEN 'a' AND 'z'", 10, "cannot be compared with BETWEEN"),
    ("a BETWEEN 1 AND NULL", 16, "BETWEEN bounds cannot be NULL"),
    ("a BETWEEN 1 OR 2", 12, "expected AND in BETWEEN"),
    ("NOT a BETWEEN 1 AND 2", 0, "cannot be compared with BETWEEN"),
    ("a IN ()", 6, "expected a string literal"),
    ("a IN (1, 2)", 6, "expected a string literal"),
    ("a IN ('x'", 9, "expected ',' or ')'"),
    ("a IN 'x'", 5, "expected '(' after IN"),
    ("NOT a IN ('x')", 0, "IN needs a property name"),
    ("'x' NOT IN ('x')", 0, "NOT IN needs a property name"),
    ("a NOT LIKE 'x'", 6, "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT"),
    ("a CONTAINS b", 11, "expected a string literal after CONTAINS"),
    ("a NOT STARTSWITH 5", 17, "expected a string literal after STARTSWITH"),
    ("a IS 5", 5, "expected NULL or NOT NULL"),
    ("a IS NOT 5", 9, "expected NULL after IS NOT"),
    ("a = +", 5, "unexpected end of expression"),
    ("(" * 100 + "a = 1" + ")" * 100, MAX_DEPTH, "nested too deeply"),
    ("NOT " * 100 + "a", 4 * MAX_DEPTH, "nested too deeply"),
]


def _id(row: tuple[object, ...]) -> str:
    return " | ".join(repr(part) for part in row[:2])


@pytest.mark.parametrize(("expression", "properties", "expected"), MATCHES, ids=[_id(row) for row in MATCHES])
def test_matches(expression: str, properties: dict[str, str], expected: bool) -> None:
    assert compile_sql(expression).matches(properties) is expected


@pytest.mark.parametrize(("expression", "position", "fragment"), ERRORS, ids=[_id(row) for row in ERRORS])
def test_invalid(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(SqlFilterError) as caught:
        compile_sql(expression)
    error = caught.value
    assert isinstance(error, ValueError)
    assert fragment in error.message
    assert error.position == position
    assert f"at position {position}" in str(error)
    assert "\n" not in str(error)


def test_table_coverage() -> None:
    """Enough distinct expressions, each tried with and without the properties it reads."""
    expressions = {expression for expression, _, _ in MATCHES} | {expression for expression, _, _ in ERRORS}
    assert len(expressions) >= 80
    for expression in {expression for expression, _, _ in MATCHES}:
        names = compile_sql(expression).properties
        if not names:
            continue
        rows = [properties for candidate, properties, _ in MATCHES if candidate == expression]
        assert any(names <= properties.keys() for properties in rows), f"{expression!r}: no row with {set(names)}"
        assert any(not names <= properties.keys() for properties in rows), f"{expression!r}: no row without them"


@pytest.mark.parametrize(
    ("expression", "marked"),
    [
        ("a = 1)", "a = 1>>>)"),
        ("a > 'x'", "a > >>>'x'"),
        ("a = 1 AND", "a = 1 AND>>>"),
        ("a = 'x' AND\nb ! 2", "a = 'x' AND b >>>! 2"),  # line breaks do not break the message
    ],
)
def test_error_marks_the_spot(expression: str, marked: str) -> None:
    with pytest.raises(SqlFilterError) as caught:
        compile_sql(expression)
    assert str(caught.value).endswith(f": {marked}")


def test_error_excerpt_is_bounded() -> None:
    expression = "a = 1 AND " * 20 + "b = )" + " OR c = 1" * 20
    with pytest.raises(SqlFilterError) as caught:
        compile_sql(expression)
    error = caught.value
    assert error.position == expression.index(")")
    expected = "unexpected ')', expected a property name, a literal or '('"
    assert str(error).startswith(f"{expected} at position {error.position}: ...")
    assert str(error).endswith(": ...1 AND a = 1 AND a = 1 AND b = >>>) OR c = 1 OR c = 1 OR c = 1 O...")
    assert len(str(error)) < 200


def test_error_without_expression() -> None:
    assert str(SqlFilterError("bad", 3)) == "bad at position 3"
    assert str(SqlFilterError("bad")) == "bad"
    assert SqlFilterError("bad").position is None


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("TRUE", set()),
        ("1 = 1.0", set()),
        ("a = 'x'", {"a"}),
        ("a = b AND a > 5", {"a", "b"}),
        ("TAGS IN ('x') OR (Color = 'red' AND NOT (size BETWEEN 1 AND 2) = FALSE)", {"TAGS", "Color", "size"}),
        ("x IS NULL AND y CONTAINS 'in' AND z NOT ENDSWITH 'and' AND $w AND -v IS NULL", {"x", "y", "z", "$w", "v"}),
        ("b = '1' OR a > 5", {"a", "b"}),  # names in branches that may be skipped count too
    ],
)
def test_properties_read(expression: str, names: set[str]) -> None:
    assert compile_sql(expression).properties == frozenset(names)


def test_compiled_filter_is_reusable() -> None:
    sql = compile_sql("a > 5 AND TAGS IN ('t1', 't2')")
    assert sql.expression == "a > 5 AND TAGS IN ('t1', 't2')"
    messages = [{"a": str(i), "TAGS": f"t{i % 3}"} for i in range(12)]
    assert [sql.matches(message) for message in messages] == [i > 5 and i % 3 in (1, 2) for i in range(12)]
    assert [sql.matches(message) for message in messages] == [i > 5 and i % 3 in (1, 2) for i in range(12)]
    assert repr(sql) == "SqlFilter(\"a > 5 AND TAGS IN ('t1', 't2')\")"


def test_long_chains_do_not_recurse() -> None:
    """AND/OR chains are flattened, so a long filter does not hit Python's recursion limit."""
    sql = compile_sql(" OR ".join(f"a = {i}" for i in range(2000)))
    assert sql.matches({"a": "1999"})
    assert not sql.matches({"a": "2000"})
    assert not sql.matches({})
