"""Users with grants, their sessions and service-account keys, made with Bastion's own
code exactly as a login or an admin would leave them: the one place tests mint them.

``tests.admin.helpers.mint`` (in-process app), ``tests.support.server.Credentials``
(a server's data folder) and ``tests.security.test_step_up.mint`` are thin wrappers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection

from bastion.authn.sessions import IssuedTokens, SessionIssuer, start_session
from bastion.identity.grants import replace_grants
from bastion.identity.service_accounts import create_api_key, create_service_account
from bastion.identity.tenants import create_tenant, tenant_by_name
from bastion.identity.users import User, create_user
from bastion.storage import new_id

# The amr a real sign-in reaching each acr carries (RFC 8176): a password; a password and
# a TOTP code; a hardware key with user verification.
AMR: dict[str, list[str]] = {
    "aal1": ["pwd"],
    "aal2": ["mfa", "otp", "pwd"],
    "aal3": ["hwk", "mfa", "user"],
}


def tenant_id(conn: Connection, name: str, *, now: datetime) -> str:
    """The tenant ``name``, created when missing."""
    found = tenant_by_name(conn, name) or create_tenant(conn, name, now=now)
    return found.id


def new_user(
    conn: Connection,
    *,
    roles: Sequence[str],
    now: datetime,
    tenant: str = "default",
    collections: Sequence[str] | None = None,
    username: str | None = None,
    password_hash: str | None = None,
) -> User:
    """A user of ``tenant`` holding ``roles`` (narrowed to ``collections``)."""
    home = tenant_id(conn, tenant, now=now)
    user = create_user(
        conn,
        tenant_id=home,
        username=username or new_id("u").replace("_", "-"),
        password_hash=password_hash,
        now=now,
    )
    replace_grants(
        conn, "user", user.id, tenant_id=home, roles=roles, collections=collections, now=now
    )
    return user


def new_session(
    conn: Connection,
    issuer: SessionIssuer,
    user: User,
    *,
    acr: str,
    now: datetime,
    age: int = 0,
    amr: Sequence[str] | None = None,
) -> IssuedTokens:
    """A live session of ``user`` at ``acr``, authenticated ``age`` seconds ago."""
    return start_session(
        conn,
        issuer,
        user,
        acr=acr,
        amr=list(amr) if amr is not None else AMR[acr],
        auth_time=now - timedelta(seconds=age),
        now=now,
    )


def new_api_key(
    conn: Connection,
    *,
    role: str,
    now: datetime,
    tenant: str = "default",
    collections: Sequence[str] | None = None,
) -> str:
    """A new service account of ``tenant`` with ``role``, and the secret of its key."""
    home = tenant_id(conn, tenant, now=now)
    account = create_service_account(conn, tenant_id=home, name=new_id("svc"), now=now)
    replace_grants(
        conn,
        "service_account",
        account.id,
        tenant_id=home,
        roles=[role],
        collections=collections,
        now=now,
    )
    return create_api_key(conn, service_account_id=account.id, expires_in=None, now=now).secret
