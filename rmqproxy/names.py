"""Rules for topic and consumer group names (those of the managed service this mirrors)."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9_%-]{3,64}")
NAME_RULE = "3-64 characters of letters, digits, '_', '-' and '%'"
DLQ_PREFIX = "%DLQ%"
RETRY_PREFIX = "%RETRY%"
RESERVED_PREFIXES = (DLQ_PREFIX, RETRY_PREFIX)


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid user-created ``kind`` name, or None if it is."""
    if not NAME_PATTERN.fullmatch(name):
        return f"invalid {kind} name {name!r}: use {NAME_RULE}"
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"invalid {kind} name {name!r}: the prefix {prefix!r} is reserved for system topics"
    return None


def is_valid_resource_name(name: str) -> bool:
    """Whether a name can appear in a request at all (system topics such as %DLQ%group included)."""
    if NAME_PATTERN.fullmatch(name):
        return True
    return any(name.startswith(p) and NAME_PATTERN.fullmatch(name[len(p):]) for p in RESERVED_PREFIXES)


def dlq_topic(group: str) -> str:
    return DLQ_PREFIX + group
