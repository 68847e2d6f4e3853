"""Our apache.rocketmq.v2 schema must match the RocketMQ Python client's, element for element.

Stock clients only interoperate if every name, number, type, label, oneof and streaming flag is
the same, so the client's compiled descriptors are the reference. The only permitted differences
are the extensions newer than the client's rocketmq-apis v2.1.2, listed in allowed_extras().
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DUMP_SCRIPT = Path(__file__).resolve().parent / "proto_dump.py"
REFERENCE_MODULES = ("rocketmq.grpc_protocol.definition_pb2", "rocketmq.grpc_protocol.service_pb2")
OUR_MODULES = (
    "rmqproxy.pb.apache.rocketmq.v2.definition_pb2",
    "rmqproxy.pb.apache.rocketmq.v2.service_pb2",
)
PKG = "apache.rocketmq.v2"

Schema = Mapping[str, Mapping[str, Any]]


def _string_field(number: int) -> dict[str, Any]:
    return {
        "number": number,
        "type": "TYPE_STRING",
        "type_name": "",
        "label": "LABEL_OPTIONAL",
        "oneof": None,
        "proto3_optional": False,
        "default_value": "",
        "options": {},
    }


def allowed_extras() -> dict[str, dict[str, Any]]:
    """Elements we have beyond the reference, with the exact facts each must have.

    A function rather than a module constant so no test can mutate shared state.
    """
    entry = f"{PKG}.Settings.ClientPropertiesEntry"
    return {
        f"field {PKG}.Settings.client_properties": {
            "number": 9,
            "type": "TYPE_MESSAGE",
            "type_name": f".{entry}",
            "label": "LABEL_REPEATED",
            "oneof": None,
            "proto3_optional": False,
            "default_value": "",
            "options": {},
        },
        f"message {entry}": {
            "options": {"map_entry": True},
            "oneofs": [],
            "reserved_names": [],
            "reserved_ranges": [],
            "extension_ranges": [],
        },
        f"field {entry}.key": _string_field(1),
        f"field {entry}.value": _string_field(2),
        f"enum value {PKG}.Code.INVALID_CLIENT_PROPERTIES": {"number": 40021, "options": {}},
    }


def _describe_change(key: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> str:
    parts = [
        f"{fact}: expected {want.get(fact)!r}, ours {have.get(fact)!r}"
        for fact in sorted(set(want) | set(have))
        if want.get(fact) != have.get(fact)
    ]
    return f"changed {key}: " + "; ".join(parts)


def compare(reference: Schema, ours: Schema, extras: Schema) -> list[str]:
    """Every difference between the schemas, one readable line each; empty when they conform.

    Elements of the reference must exist in ours with identical facts. Elements only we have must
    be listed in extras with identical facts, and every listed extra must be present.
    """
    problems: list[str] = []
    for key in sorted(reference):
        if key not in ours:
            problems.append(f"missing {key}")
        elif ours[key] != reference[key]:
            problems.append(_describe_change(key, reference[key], ours[key]))
    for key in sorted(set(ours) - set(reference)):
        if key not in extras:
            problems.append(f"unexpected {key}")
        elif ours[key] != extras[key]:
            problems.append(_describe_change(key, extras[key], ours[key]))
    problems += [f"missing extra {key}" for key in sorted(set(extras) - set(ours))]
    return problems


def dump_schema(modules: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Schema of the given *_pb2 modules, dumped in a fresh interpreter (see proto_dump.py)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [sys.executable, str(DUMP_SCRIPT), *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"dumping {', '.join(modules)} failed (the reference needs the test dependency "
            f"rocketmq-python-client==5.1.2: pip install -e '.[test]'):\n{result.stderr}"
        )
    schema: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return schema


def test_schema_matches_reference() -> None:
    reference = dump_schema(REFERENCE_MODULES)
    ours = dump_schema(OUR_MODULES)
    # Guard against a dump that silently came out empty or partial.
    assert f"service {PKG}.MessagingService" in reference
    assert f"enum {PKG}.Code" in reference
    problems = compare(reference, ours, allowed_extras())
    if problems:
        pytest.fail("schema differs from the RocketMQ client's:\n  " + "\n  ".join(problems))


# The tests below prove compare() notices each kind of drift, on small hand-made schemas.


def _small_schema() -> dict[str, dict[str, Any]]:
    field = _string_field(1)
    return {
        f"field {PKG}.Resource.name": field,
        f"enum {PKG}.Permission": {"options": {}},
        f"enum value {PKG}.Permission.READ": {"number": 2, "options": {}},
        f"enum value {PKG}.Permission.WRITE": {"number": 3, "options": {}},
    }


def test_compare_accepts_identical_schemas() -> None:
    assert compare(_small_schema(), _small_schema(), {}) == []


def test_compare_detects_changed_field_number() -> None:
    ours = _small_schema()
    ours[f"field {PKG}.Resource.name"]["number"] = 7
    assert compare(_small_schema(), ours, {}) == [
        f"changed field {PKG}.Resource.name: number: expected 1, ours 7"
    ]


def test_compare_detects_missing_enum_value() -> None:
    ours = _small_schema()
    del ours[f"enum value {PKG}.Permission.WRITE"]
    assert compare(_small_schema(), ours, {}) == [f"missing enum value {PKG}.Permission.WRITE"]


def test_compare_detects_unexpected_extra_field() -> None:
    ours = _small_schema()
    ours[f"field {PKG}.Resource.owner"] = _string_field(3)
    assert compare(_small_schema(), ours, {}) == [f"unexpected field {PKG}.Resource.owner"]


def test_compare_checks_allowed_extras_exactly() -> None:
    key = f"enum value {PKG}.Permission.ADMIN"
    extras = {key: {"number": 5, "options": {}}}
    ours = _small_schema()
    # A listed extra that is absent, then one with the wrong facts, are both reported.
    assert compare(_small_schema(), ours, extras) == [f"missing extra {key}"]
    ours[key] = {"number": 6, "options": {}}
    assert compare(_small_schema(), ours, extras) == [f"changed {key}: number: expected 5, ours 6"]
