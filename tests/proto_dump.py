"""Dump the protobuf schema of generated *_pb2 modules as one flat JSON object on stdout.

Usage: python tests/proto_dump.py MODULE [MODULE ...]

Used by test_proto_conformance.py. Our generated code and the RocketMQ Python client's both
register apache.rocketmq.v2.* in protobuf's default descriptor pool, so they cannot be imported in
one process; each side is dumped by its own run of this script and the JSON compared.

Each key names one schema element ("field apache.rocketmq.v2.Settings.metric", "enum value
apache.rocketmq.v2.Code.OK", ...) and its value holds the element's wire facts, so two dumps can be
diffed key by key with readable output. Files are keyed by base name because the client compiles
"definition.proto" while we compile "apache/rocketmq/v2/definition.proto"; the file names are not
wire facts.
"""

from __future__ import annotations

import importlib
import json
import posixpath
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import Message

Element = tuple[str, dict[str, Any]]


def options(opts: Message) -> dict[str, Any]:
    """Options as a plain dict; unset and empty options both become {}."""
    as_dict: dict[str, Any] = json_format.MessageToDict(opts, preserving_proto_field_name=True)
    return as_dict


def field_facts(field: descriptor_pb2.FieldDescriptorProto, oneofs: Sequence[str]) -> dict[str, Any]:
    return {
        "number": field.number,
        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
        "type_name": field.type_name,
        "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
        # A proto3 `optional` field sits in a synthetic oneof; a real oneof member does not set
        # proto3_optional. Both are recorded so one cannot stand in for the other.
        "oneof": oneofs[field.oneof_index] if field.HasField("oneof_index") else None,
        "proto3_optional": field.proto3_optional,
        "default_value": field.default_value,
        "options": options(field.options),
    }


def enum_elements(enum: descriptor_pb2.EnumDescriptorProto, scope: str) -> Iterator[Element]:
    name = f"{scope}.{enum.name}"
    yield (
        f"enum {name}",
        {
            "options": options(enum.options),
            "reserved_names": list(enum.reserved_name),
            "reserved_ranges": [[r.start, r.end] for r in enum.reserved_range],
        },
    )
    for value in enum.value:
        yield f"enum value {name}.{value.name}", {"number": value.number, "options": options(value.options)}


def message_elements(message: descriptor_pb2.DescriptorProto, scope: str) -> Iterator[Element]:
    name = f"{scope}.{message.name}"
    oneofs = [oneof.name for oneof in message.oneof_decl]
    yield (
        f"message {name}",
        {
            "options": options(message.options),  # map_entry marks the synthetic map<> entry types
            "oneofs": oneofs,
            "reserved_names": list(message.reserved_name),
            "reserved_ranges": [[r.start, r.end] for r in message.reserved_range],
            "extension_ranges": [[r.start, r.end] for r in message.extension_range],
        },
    )
    for field in message.field:
        yield f"field {name}.{field.name}", field_facts(field, oneofs)
    for nested in message.nested_type:
        yield from message_elements(nested, name)
    for enum in message.enum_type:
        yield from enum_elements(enum, name)


def file_elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[Element]:
    yield (
        f"file {posixpath.basename(file.name)}",
        {
            "package": file.package,
            "syntax": file.syntax,
            "dependencies": sorted(posixpath.basename(dep) for dep in file.dependency),
            "options": options(file.options),
        },
    )
    scope = file.package
    for message in file.message_type:
        yield from message_elements(message, scope)
    for enum in file.enum_type:
        yield from enum_elements(enum, scope)
    for service in file.service:
        service_name = f"{scope}.{service.name}"
        yield f"service {service_name}", {"options": options(service.options)}
        for method in service.method:
            yield (
                f"method {service_name}.{method.name}",
                {
                    "input_type": method.input_type,
                    "output_type": method.output_type,
                    "client_streaming": method.client_streaming,
                    "server_streaming": method.server_streaming,
                    "options": options(method.options),
                },
            )


def dump(module_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    elements: dict[str, dict[str, Any]] = {}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        file = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        for key, facts in file_elements(file):
            if key in elements:
                raise SystemExit(f"schema element {key!r} defined twice")
            elements[key] = facts
    return elements


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(dump(argv), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
