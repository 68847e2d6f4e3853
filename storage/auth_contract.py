"""The store contract's users and ACL entries (part of :class:`storage.base.MessageStore`).

Users and ACL entries are configuration, like topics and groups: each change is one atomic write
that survives a crash on a persistent store, and deleting a user deletes its ACL entries in the
same write. The secret is stored as given: the clients' signature is an HMAC keyed with it, so
the server needs it back, as the reference does.

A backend that keeps no users inherits these defaults, which refuse with :class:`AuthUnsupported`:
the server then cannot run with ``--auth`` on it.
"""

from __future__ import annotations

from storage.auth_model import AclEntry, Decision, User
from storage.errors import AlreadyExists, NotFound, StoreError


class UserNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} does not exist")
        self.name = name


class UserExists(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"user {name!r} already exists")
        self.name = name


class AclNotFound(NotFound):
    def __init__(self, user: str, resource: str) -> None:
        super().__init__(f"user {user!r} has no ACL entry for {resource!r}")
        self.user = user
        self.resource = resource


class AuthUnsupported(StoreError):
    pass


def _unsupported() -> AuthUnsupported:
    return AuthUnsupported("this store keeps no users or ACLs")


class AuthContract:
    """Users and ACL entries; every backend of :class:`storage.base.MessageStore` inherits it."""

    async def create_user(self, user: User) -> User:
        """Store a new user; UserExists if the name is taken."""
        raise _unsupported()

    async def update_user(self, user: User) -> User:
        """Replace a user's secret, type and status (its creation time is kept); UserNotFound."""
        raise _unsupported()

    async def delete_user(self, name: str) -> None:
        """Delete a user and, in the same write, its ACL entries; UserNotFound."""
        raise _unsupported()

    async def get_user(self, name: str) -> User | None:
        raise _unsupported()

    async def list_users(self) -> list[User]:
        """Every user, by name."""
        raise _unsupported()

    async def put_acl(self, entry: AclEntry) -> AclEntry:
        """Create the entry, or replace the user's entry with the same resource and decision;
        UserNotFound if the user does not exist."""
        raise _unsupported()

    async def delete_acl(self, user: str, resource: str, decision: Decision | None = None) -> int:
        """Delete the user's entries for ``resource`` (of that decision, or both); how many went.
        AclNotFound if there was none."""
        raise _unsupported()

    async def list_acls(self, user: str | None = None) -> list[AclEntry]:
        """The entries of ``user`` (every user's if None), by user, resource, decision."""
        raise _unsupported()
