"""The Redis Cluster store's users and ACL entries: two hashes in the catalog's slot::

    NS:{NS}:users   hash   name -> JSON user
    NS:{NS}:acls    hash   user 0x00 resource 0x00 decision -> JSON entry

Both share the catalog's hash tag, so each change is one script on one node: creating a user
refuses a taken name, an ACL entry refuses an unknown user, and deleting a user takes its entries
in the same script. The JSON is storage/auth_model.py's, as in RocksDB. Writes wait for
replicas like sends do (``--redis-wait-replicas``): they are rare and must survive a failover.
"""

from __future__ import annotations

import dataclasses

from storage.auth_contract import AclNotFound, UserExists, UserNotFound
from storage.auth_model import AclEntry, Decision, User, acl_from_json, acl_to_json, user_from_json, user_to_json
from storage.redis.client import Script
from storage.redis.core import RedisCore

_SEP = "\x00"

# KEYS: users, acls. ARGV: name, JSON user.
_CREATE_USER = Script("""
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
return 1
""")
# KEYS: users. ARGV: name, JSON user. Returns the stored JSON (for its created_ms) or false.
_UPDATE_USER = Script("""
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return current
""")
# KEYS: users, acls. ARGV: name, prefix of its entries. Returns 0 if there was no such user.
_DELETE_USER = Script("""
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local fields = redis.call('HKEYS', KEYS[2])
local prefix = ARGV[2]
for _, field in ipairs(fields) do
  if string.sub(field, 1, #prefix) == prefix then redis.call('HDEL', KEYS[2], field) end
end
return 1
""")
# KEYS: users, acls. ARGV: user, field, JSON entry. Returns 0 if the user does not exist.
_PUT_ACL = Script("""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
""")


class RedisAuth(RedisCore):
    def _auth_keys(self) -> tuple[str, str]:
        tag = self._keys.catalog[: -len("catalog")]
        return tag + "users", tag + "acls"

    @staticmethod
    def _field(user: str, resource: str, decision: Decision) -> str:
        return f"{user}{_SEP}{resource}{_SEP}{decision.value}"

    async def create_user(self, user: User) -> User:
        self._check_open()
        users, acls = self._auth_keys()
        if not await self._conn.run(_CREATE_USER, [users, acls], [user.name, user_to_json(user)], wait=True):
            raise UserExists(user.name)
        return user

    async def update_user(self, user: User) -> User:
        self._check_open()
        users, _ = self._auth_keys()
        # The creation time is kept: read it first, then write the whole user in one script.
        current = await self.get_user(user.name)
        if current is None:
            raise UserNotFound(user.name)
        updated = dataclasses.replace(user, created_ms=current.created_ms)
        if not await self._conn.run(_UPDATE_USER, [users], [user.name, user_to_json(updated)], wait=True):
            raise UserNotFound(user.name)
        return updated

    async def delete_user(self, name: str) -> None:
        self._check_open()
        users, acls = self._auth_keys()
        if not await self._conn.run(_DELETE_USER, [users, acls], [name, name + _SEP], wait=True):
            raise UserNotFound(name)

    async def get_user(self, name: str) -> User | None:
        self._check_open()
        users, _ = self._auth_keys()
        raw: bytes | None = await self._conn.retrying(lambda: self._conn.cluster.hget(users, name))  # type: ignore[arg-type,return-value]
        return None if raw is None else user_from_json(raw)

    async def list_users(self) -> list[User]:
        self._check_open()
        users, _ = self._auth_keys()
        raw: dict[bytes, bytes] = await self._conn.retrying(lambda: self._conn.cluster.hgetall(users))  # type: ignore[arg-type,return-value]
        return sorted((user_from_json(v) for v in raw.values()), key=lambda u: u.name)

    async def put_acl(self, entry: AclEntry) -> AclEntry:
        self._check_open()
        users, acls = self._auth_keys()
        field = self._field(entry.user, entry.resource, entry.decision)
        if not await self._conn.run(_PUT_ACL, [users, acls], [entry.user, field, acl_to_json(entry)], wait=True):
            raise UserNotFound(entry.user)
        return entry

    async def delete_acl(self, user: str, resource: str, decision: Decision | None = None) -> int:
        self._check_open()
        _, acls = self._auth_keys()
        fields = [self._field(user, resource, d) for d in (Decision if decision is None else (decision,))]
        gone = int(await self._conn.retrying(lambda: self._conn.cluster.hdel(acls, *fields)))
        if not gone:
            raise AclNotFound(user, resource)
        return gone

    async def list_acls(self, user: str | None = None) -> list[AclEntry]:
        self._check_open()
        _, acls = self._auth_keys()
        raw: dict[bytes, bytes] = await self._conn.retrying(lambda: self._conn.cluster.hgetall(acls))  # type: ignore[arg-type,return-value]
        entries = [acl_from_json(v) for v in raw.values()]
        if user is not None:
            entries = [e for e in entries if e.user == user]
        return sorted(entries, key=lambda e: e.key)
