"""The RocksDB store's users and ACL entries, in the ``meta`` column family::

    meta  "user/" name                             -> JSON user (name, secret, type, status, created_ms)
          "acl/" user 0x00 resource 0x00 decision  -> JSON entry (actions, sources)

Names never contain 0x00 (names are checked where they enter: rmqproxy/auth/admin.py), so a
user's entries are the one range "acl/" user 0x00 .. "acl/" user 0x01, and deleting a user is one
WriteBatch with the user's key and that range. Every write is synced: these are rare and must
survive a crash.
"""

from __future__ import annotations

import dataclasses

from storage.auth_contract import AclNotFound, UserExists, UserNotFound
from storage.auth_model import AclEntry, Decision, User, acl_from_json, acl_to_json, user_from_json, user_to_json
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.write import Write

META_USER = b"user/"
META_ACL = b"acl/"
_SEP = b"\x00"


def _user_key(name: str) -> bytes:
    return META_USER + name.encode()


def _acl_prefix(user: str) -> bytes:
    return META_ACL + user.encode() + _SEP


def _acl_key(user: str, resource: str, decision: Decision) -> bytes:
    return _acl_prefix(user) + resource.encode() + _SEP + decision.value.encode()


class RocksDBAuth(RocksDBCore):
    def _load_user(self, name: str) -> User | None:
        raw = self._cf["meta"].get(_user_key(name))
        return None if raw is None else user_from_json(raw)

    def _put_user(self, user: User) -> User:
        self._put_meta(_user_key(user.name), user_to_json(user))
        return user

    async def create_user(self, user: User) -> User:
        self._check_open()
        if self._load_user(user.name) is not None:
            raise UserExists(user.name)
        return self._put_user(user)

    async def update_user(self, user: User) -> User:
        self._check_open()
        current = self._load_user(user.name)
        if current is None:
            raise UserNotFound(user.name)
        return self._put_user(dataclasses.replace(user, created_ms=current.created_ms))

    async def delete_user(self, name: str) -> None:
        self._check_open()
        if self._load_user(name) is None:
            raise UserNotFound(name)
        write = Write(self)
        write.delete("meta", _user_key(name))
        prefix = _acl_prefix(name)
        write.delete_range("meta", prefix, L.next_prefix(prefix))
        write.commit(durable=True)

    async def get_user(self, name: str) -> User | None:
        self._check_open()
        return self._load_user(name)

    async def list_users(self) -> list[User]:
        self._check_open()
        return [user_from_json(v) for _, v in self._scan("meta", META_USER, L.next_prefix(META_USER))]

    async def put_acl(self, entry: AclEntry) -> AclEntry:
        self._check_open()
        if self._load_user(entry.user) is None:
            raise UserNotFound(entry.user)
        self._put_meta(_acl_key(entry.user, entry.resource, entry.decision), acl_to_json(entry))
        return entry

    async def delete_acl(self, user: str, resource: str, decision: Decision | None = None) -> int:
        self._check_open()
        meta = self._cf["meta"]
        keys = [_acl_key(user, resource, d) for d in (Decision if decision is None else (decision,))]
        present = [k for k in keys if meta.get(k) is not None]
        if not present:
            raise AclNotFound(user, resource)
        write = Write(self)
        for key in present:
            write.delete("meta", key)
        write.commit(durable=True)
        return len(present)

    async def list_acls(self, user: str | None = None) -> list[AclEntry]:
        self._check_open()
        prefix = META_ACL if user is None else _acl_prefix(user)
        entries = [acl_from_json(v) for _, v in self._scan("meta", prefix, L.next_prefix(prefix))]
        return sorted(entries, key=lambda e: e.key)
