"""Subscription filter expressions, compiled once per request into a predicate on queue entries.

Tag expressions: ``*`` or empty matches everything; ``TagA||TagB`` matches messages whose tag is
one of those (spaces around ``||`` are ignored); a message without a tag matches only ``*``.
The predicate reads only the queue entry (tag, properties), never the message body.
"""

from __future__ import annotations

from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code, FilterType
from storage.base import EntryFilter
from storage.model import QueueEntry


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


def compile_filter(filter_type: int, expression: str) -> EntryFilter | None:
    """A predicate for the store, or None when every message matches."""
    if filter_type == FilterType.SQL:
        raise ProtocolError(Code.NOT_IMPLEMENTED, "SQL92 filter expressions are not supported yet")
    tags = parse_tags(expression)
    if tags is None:
        return None

    def accept(entry: QueueEntry) -> bool:
        return entry.tag is not None and entry.tag in tags

    return accept
