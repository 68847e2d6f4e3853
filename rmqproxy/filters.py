"""Subscription filter expressions, compiled once into a predicate on queue entries.

Tag expressions: ``*`` or empty matches everything; ``TagA||TagB`` matches messages whose tag is
one of those (spaces around ``||`` are ignored); a message without a tag matches only ``*``.

SQL92 expressions (RocketMQ's dialect, see :mod:`rmqproxy.sql92`) are evaluated over the message's
user properties with its tag as the property ``TAGS``.

Either way the predicate reads only the queue entry (tag, properties), never the message body, and
compiled filters are cached: a consumer sends the same expression with every receive.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code, FilterType
from rmqproxy.sql92 import SqlFilter, SqlFilterError, compile_sql
from storage.base import EntryFilter, TagFilter
from storage.model import QueueEntry

TAGS_PROPERTY = "TAGS"


def parse_tags(expression: str) -> frozenset[str] | None:
    """The tags an expression accepts, or None for 'everything'."""
    text = expression.strip()
    if text in ("", "*"):
        return None
    tags = frozenset(part.strip() for part in text.split("||") if part.strip())
    if not tags:
        raise ProtocolError(Code.ILLEGAL_FILTER_EXPRESSION, f"tag expression {expression!r} names no tag")
    if "*" in tags:
        return None
    return tags


class SqlEntryFilter:
    """Matches a queue entry against a compiled SQL92 expression."""

    __slots__ = ("expression", "sql")

    def __init__(self, expression: str, sql: SqlFilter) -> None:
        self.expression = expression
        self.sql = sql

    def __reduce__(self) -> tuple[object, ...]:
        # Sent to the store process as its text and compiled there (once: compiles are cached).
        return (_compile, (FilterType.SQL, self.expression))

    def __call__(self, entry: QueueEntry) -> bool:
        properties: Mapping[str, str] = entry.properties
        if entry.tag is not None and TAGS_PROPERTY in self.sql.properties:
            properties = {**properties, TAGS_PROPERTY: entry.tag}
        return self.sql.matches(properties)


@functools.lru_cache(maxsize=1024)
def _compile(filter_type: int, expression: str) -> EntryFilter | None:
    if filter_type == FilterType.SQL:
        try:
            return SqlEntryFilter(expression, compile_sql(expression))
        except SqlFilterError as exc:
            raise ProtocolError(Code.ILLEGAL_FILTER_EXPRESSION, f"invalid SQL92 filter: {exc}") from exc
    tags = parse_tags(expression)
    return None if tags is None else TagFilter(tags)


def compile_filter(filter_type: int, expression: str) -> EntryFilter | None:
    """A predicate for the store, or None when every message matches. ILLEGAL_FILTER_EXPRESSION
    (with what is wrong and where) for an invalid expression."""
    return _compile(filter_type, expression)


def describe_filter(filter_type: int, expression: str) -> str:
    """How a subscription is shown to operators: the tag expression, or ``SQL92: ...``."""
    if filter_type == FilterType.SQL:
        return f"SQL92: {expression}"
    return expression.strip() or "*"
