"""Hypothesis strategies for any protobuf message, built from its descriptor (tests/test_fuzz.py).

Values lean towards what finds bugs in a server rather than what is uniformly random: names of
resources that exist (so a request gets past the lookups into the code behind them), the edges of
each integer type, enum numbers no schema defines, empty and oversized strings, nested messages a
few levels deep, and fields left unset.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 3

_INT32 = (-(2**31), -1, 0, 1, 2, 7, 8, 16, 32, 2**31 - 1)
_INT64 = (-(2**63), -1, 0, 1, 1000, 30_000, 2**32, 2**63 - 1)
_UINT32 = (0, 1, 2**32 - 1)
_UINT64 = (0, 1, 2**64 - 1)

_NAME_ALPHABET = string.ascii_letters + string.digits + "-_%|.* \t\u00e9\u4e2d\x00"


def _ints(edges: Sequence[int], low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _scalar(field: FieldDescriptor, names: Sequence[str]) -> st.SearchStrategy[Any]:
    t = field.type
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return _ints(_INT32, -(2**31), 2**31 - 1)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _ints(_INT64, -(2**63), 2**63 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _ints(_UINT32, 0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _ints(_UINT64, 0, 2**64 - 1)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    if t == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.sampled_from((-1, 99, 2**31 - 1)))
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.sampled_from((b"", b"\x00" * 4096)),
                         st.sampled_from([n.encode() for n in names]))
    # strings: existing names first, then odd ones
    return st.one_of(st.sampled_from(tuple(names)), st.text(_NAME_ALPHABET, max_size=24),
                     st.sampled_from(("", "a" * 300, "%DLQ%x", "%RETRY%x", "TAG || *", "a=1 AND b>'x'")))


def messages(descriptor: Descriptor, names: Sequence[str], depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type; string fields favour ``names`` (existing resources)."""
    cls = message_class(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        value = _field(field, names, depth)
        if value is not None:
            fields[field.name] = value
    if not fields:
        return st.builds(cls)
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, descriptor, values))


def _field(field: FieldDescriptor, names: Sequence[str], depth: int) -> st.SearchStrategy[Any] | None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"], names)
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                return None
            return st.dictionaries(key, _scalar(value_field, names), max_size=3)
        if depth >= MAX_DEPTH:
            return None
        single = messages(field.message_type, names, depth + 1)
    else:
        single = _scalar(field, names)
    if is_repeated(field):
        return st.lists(single, max_size=3)
    return single


def is_repeated(field: FieldDescriptor) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if isinstance(repeated, bool):
        return repeated
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _build(cls: type[Message], descriptor: Descriptor, values: dict[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            target.update(value)
        elif is_repeated(field):
            target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


METADATA_KEYS = ("x-mq-client-id", "x-mq-language", "x-mq-protocol", "x-mq-namespace", "x-mq-client-version",
                 "x-mq-request-id", "x-mq-date-time", "authorization")
_META_TEXT = string.ascii_letters + string.digits + "-_.%:=/ "


def metadata() -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    """Request metadata: the usual headers, each absent, ordinary or odd."""
    ordinary = {"x-mq-client-id": "fuzz-client", "x-mq-language": "JAVA", "x-mq-protocol": "v2"}
    def value(key: str) -> st.SearchStrategy[str | None]:
        odd = st.text(_META_TEXT, max_size=40).map(str.strip)
        choices: list[st.SearchStrategy[str | None]] = [st.none(), odd]
        if key in ordinary:
            choices.insert(0, st.just(ordinary[key]))
        if key == "x-mq-language":
            choices.append(st.sampled_from(("PYTHON", "GOLANG", "NODE_JS", "RUST", "CPP", "DOTNET", "java", "")))
        return st.one_of(*choices)

    return st.fixed_dictionaries({key: value(key) for key in METADATA_KEYS}).map(
        lambda chosen: tuple((k, v) for k, v in chosen.items() if v is not None))
