"""The in-memory store's users and ACL entries."""

from __future__ import annotations

import dataclasses

from storage.auth_contract import AclNotFound, UserExists, UserNotFound
from storage.auth_model import AclEntry, Decision, User
from storage.memory.state import MemoryState


class MemoryAuth(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self._users: dict[str, User] = {}
        self._acls: dict[tuple[str, str, Decision], AclEntry] = {}

    async def create_user(self, user: User) -> User:
        self._check_open()
        if user.name in self._users:
            raise UserExists(user.name)
        self._users[user.name] = user
        return user

    async def update_user(self, user: User) -> User:
        self._check_open()
        current = self._users.get(user.name)
        if current is None:
            raise UserNotFound(user.name)
        updated = dataclasses.replace(user, created_ms=current.created_ms)
        self._users[user.name] = updated
        return updated

    async def delete_user(self, name: str) -> None:
        self._check_open()
        if self._users.pop(name, None) is None:
            raise UserNotFound(name)
        for key in [k for k in self._acls if k[0] == name]:
            del self._acls[key]

    async def get_user(self, name: str) -> User | None:
        self._check_open()
        return self._users.get(name)

    async def list_users(self) -> list[User]:
        self._check_open()
        return [self._users[name] for name in sorted(self._users)]

    async def put_acl(self, entry: AclEntry) -> AclEntry:
        self._check_open()
        if entry.user not in self._users:
            raise UserNotFound(entry.user)
        self._acls[entry.key] = entry
        return entry

    async def delete_acl(self, user: str, resource: str, decision: Decision | None = None) -> int:
        self._check_open()
        keys = [(user, resource, d) for d in (Decision if decision is None else (decision,))]
        gone = sum(self._acls.pop(k, None) is not None for k in keys)
        if not gone:
            raise AclNotFound(user, resource)
        return gone

    async def list_acls(self, user: str | None = None) -> list[AclEntry]:
        self._check_open()
        return [self._acls[k] for k in sorted(self._acls) if user is None or k[0] == user]
