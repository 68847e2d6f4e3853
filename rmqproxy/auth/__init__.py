"""Authentication and authorization: users, ACL 2.0 entries, the clients' signature (docs/auth.md)."""
