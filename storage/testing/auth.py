"""Users and ACL entries (storage/auth_contract.py): create, update, delete, list, and what
survives a reopen."""

from __future__ import annotations

import dataclasses

import pytest

from storage.auth_contract import AclNotFound, UserExists, UserNotFound
from storage.auth_model import AclEntry, Action, Decision, User, UserStatus, UserType
from storage.base import MessageStore
from storage.testing.support import T0, Cases

ALICE = User("alice", "alice-secret", UserType.NORMAL, UserStatus.ENABLED, T0)
ROOT = User("root", "root-secret", UserType.SUPER, UserStatus.ENABLED, T0)
PUB_T = AclEntry("alice", "Topic:t", frozenset({Action.PUB}))
DENY_T = AclEntry("alice", "Topic:t", frozenset({Action.PUB, Action.SUB}), Decision.DENY, ("10.0.0.0/8",))
SUB_G = AclEntry("alice", "Group:g*", frozenset({Action.SUB}), Decision.ALLOW, ("127.0.0.1/32", "::1/128"))


class AuthCases(Cases):
    async def test_users_create_get_list(self, store: MessageStore) -> None:
        assert await store.list_users() == []
        assert await store.get_user("alice") is None
        assert await store.create_user(ALICE) == ALICE
        await store.create_user(ROOT)
        with pytest.raises(UserExists):
            await store.create_user(dataclasses.replace(ALICE, secret="other"))
        assert await store.get_user("alice") == ALICE
        assert [u.name for u in await store.list_users()] == ["alice", "root"]

    async def test_update_user_keeps_created(self, store: MessageStore) -> None:
        await store.create_user(ALICE)
        changed = dataclasses.replace(ALICE, secret="new", status=UserStatus.DISABLED, created_ms=T0 + 99)
        updated = await store.update_user(changed)
        assert updated == dataclasses.replace(changed, created_ms=T0)
        assert await store.get_user("alice") == updated
        with pytest.raises(UserNotFound):
            await store.update_user(ROOT)

    async def test_acl_entries(self, store: MessageStore) -> None:
        with pytest.raises(UserNotFound):
            await store.put_acl(PUB_T)
        await store.create_user(ALICE)
        await store.create_user(ROOT)
        await store.put_acl(PUB_T)
        await store.put_acl(DENY_T)
        await store.put_acl(SUB_G)
        root_all = AclEntry("root", "*", frozenset({Action.ALL}))
        await store.put_acl(root_all)
        assert await store.list_acls("alice") == [SUB_G, PUB_T, DENY_T]
        assert await store.list_acls() == [SUB_G, PUB_T, DENY_T, root_all]
        # Same user, resource and decision: replaced.
        wider = dataclasses.replace(PUB_T, actions=frozenset({Action.PUB, Action.SUB}))
        await store.put_acl(wider)
        assert await store.list_acls("alice") == [SUB_G, wider, DENY_T]
        assert await store.delete_acl("alice", "Topic:t", Decision.DENY) == 1
        assert await store.list_acls("alice") == [SUB_G, wider]
        await store.put_acl(DENY_T)
        assert await store.delete_acl("alice", "Topic:t") == 2
        with pytest.raises(AclNotFound):
            await store.delete_acl("alice", "Topic:t")
        assert await store.list_acls("alice") == [SUB_G]

    async def test_delete_user_drops_its_entries(self, store: MessageStore) -> None:
        await store.create_user(ALICE)
        # A user whose name extends the other's: its entries must not go with alice's.
        alicia = dataclasses.replace(ALICE, name="alice2")
        await store.create_user(alicia)
        await store.put_acl(PUB_T)
        kept = dataclasses.replace(PUB_T, user="alice2")
        await store.put_acl(kept)
        await store.delete_user("alice")
        assert await store.get_user("alice") is None
        assert await store.list_acls() == [kept]
        with pytest.raises(UserNotFound):
            await store.delete_user("alice")
        # A new user of the same name starts with no entries.
        await store.create_user(ALICE)
        assert await store.list_acls("alice") == []

    async def test_reopen_keeps_users_and_acls(self) -> None:
        store = await self.open_store()
        await store.create_user(ALICE)
        await store.create_user(ROOT)
        await store.update_user(dataclasses.replace(ALICE, status=UserStatus.DISABLED))
        await store.put_acl(PUB_T)
        await store.put_acl(DENY_T)
        await store.put_acl(SUB_G)
        users, acls = await store.list_users(), await store.list_acls()
        store = await self.reopen(store)
        try:
            assert await store.list_users() == users
            assert await store.list_acls() == acls
            assert (await store.get_user("alice") or ROOT).status is UserStatus.DISABLED
        finally:
            await store.close()
