"""Creating a user with a password and roles: one path for bootstrap, the CLI and the admin API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import Connection

from bastion.factors.password import check_new_password, hash_password
from bastion.identity.grants import replace_grants
from bastion.identity.rules import load_policy
from bastion.identity.users import User, create_user


def provision_user(
    conn: Connection,
    *,
    hasher: PasswordHasher,
    tenant_id: str,
    username: str,
    password: str | None,
    roles: Sequence[str],
    collections: Sequence[str] | None = None,
    now: datetime,
) -> User:
    """Check the password against the tenant's policy (NIST rules), hash it, create the
    user and grant ``roles``. Without a password the user must enrol through a link."""
    password_hash = None
    if password is not None:
        checked = check_new_password(
            password,
            min_length=load_policy(conn, tenant_id).password_min_length,
            context_words=[username, "bastion"],
        )
        password_hash = hash_password(checked, hasher=hasher)
    user = create_user(
        conn, tenant_id=tenant_id, username=username, password_hash=password_hash, now=now
    )
    replace_grants(
        conn, "user", user.id, tenant_id=tenant_id, roles=roles, collections=collections, now=now
    )
    return user
