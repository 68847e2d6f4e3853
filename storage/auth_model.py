"""Users and ACL entries as the store keeps them (RocketMQ's ACL 2.0 model; docs/auth.md).

Plain values, no behaviour: the matching rules live in rmqproxy/auth/acl.py. The JSON form at the
end is how every persistent backend stores them (RocksDB, Redis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class UserType(StrEnum):
    SUPER = "Super"
    """Skips authorization: may do anything, including managing users and ACLs."""
    NORMAL = "Normal"


class UserStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class ResourceType(StrEnum):
    TOPIC = "Topic"
    GROUP = "Group"
    CLUSTER = "Cluster"
    """What an admin call about no topic or group (list topics, list groups) needs: only ``*`` holds it."""


class Action(StrEnum):
    PUB = "Pub"
    SUB = "Sub"
    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"
    GET = "Get"
    LIST = "List"
    ALL = "All"


class Decision(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    """The access key."""
    secret: str
    """The secret key; never logged, never shown."""
    type: UserType = UserType.NORMAL
    status: UserStatus = UserStatus.ENABLED
    created_ms: int = 0

    def __repr__(self) -> str:  # a stray log line must not carry the secret
        return f"User(name={self.name!r}, type={self.type.value}, status={self.status.value})"


@dataclass(frozen=True, slots=True)
class AclEntry:
    """One rule: ``decision`` of ``actions`` on ``resource`` for ``user``, from ``sources`` (CIDRs;
    empty: from anywhere). A user holds at most one entry per (resource, decision)."""

    user: str
    resource: str
    """``Topic:name``, ``Topic:prefix*``, ``Group:name``, ``Group:prefix*`` or ``*``."""
    actions: frozenset[Action]
    decision: Decision = Decision.ALLOW
    sources: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, Decision]:
        return self.user, self.resource, self.decision


def user_to_json(user: User) -> bytes:
    return json.dumps({"name": user.name, "secret": user.secret, "type": user.type.value,
                       "status": user.status.value, "created_ms": user.created_ms}).encode()


def user_from_json(raw: bytes) -> User:
    data: dict[str, Any] = json.loads(raw)
    return User(data["name"], data["secret"], UserType(data["type"]), UserStatus(data["status"]), data["created_ms"])


def acl_to_json(entry: AclEntry) -> bytes:
    return json.dumps({"user": entry.user, "resource": entry.resource, "decision": entry.decision.value,
                       "actions": sorted(a.value for a in entry.actions), "sources": list(entry.sources)}).encode()


def acl_from_json(raw: bytes) -> AclEntry:
    data: dict[str, Any] = json.loads(raw)
    return AclEntry(data["user"], data["resource"], frozenset(Action(a) for a in data["actions"]),
                    Decision(data["decision"]), tuple(data["sources"]))
