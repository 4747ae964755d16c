"""The first administrator of an empty installation (API.md "Command line").

With ``BASTION_BOOTSTRAP_ADMIN_PASSWORD`` set, an ``admin`` user gets that password;
otherwise a one-time setup link is made (valid 24 h, a new one on every start while
no user exists). Either way the admin enrols a second factor at first sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from sqlalchemy import Connection, func, insert, select, update

from bastion.audit import record
from bastion.errors import InvalidToken
from bastion.identity.provisioning import provision_user
from bastion.identity.tenants import Tenant, ensure_default_tenant
from bastion.identity.users import User
from bastion.storage import Database, new_id
from bastion.storage.schema import setup_tokens, users
from bastion.tokens import new_secret, parse_secret

BOOTSTRAP_USERNAME = "admin"
SETUP_LINK_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Bootstrap:
    kind: Literal["existing", "password", "link"]
    tenant: Tenant
    setup_url: str | None = None


def create_admin(
    conn: Connection,
    tenant: Tenant,
    *,
    hasher: PasswordHasher,
    username: str,
    password: str,
    actor: str,
    now: datetime,
) -> User:
    user = provision_user(
        conn,
        hasher=hasher,
        tenant_id=tenant.id,
        username=username,
        password=password,
        roles=["admin"],
        now=now,
    )
    record(
        conn,
        "user.created",
        actor=actor,
        tenant_id=tenant.id,
        resource=f"user:{user.id}",
        details={"user_id": user.id, "username": user.username, "roles": ["admin"]},
        now=now,
    )
    return user


def joined(db: Database, *, now: datetime) -> Bootstrap:
    """A worker process of a server its parent already bootstrapped: creates nothing
    (a second setup link would cancel the one the parent printed)."""
    with db.begin() as conn:
        return Bootstrap("existing", ensure_default_tenant(conn, now=now))


def bootstrap(
    db: Database,
    *,
    hasher: PasswordHasher,
    admin_password: str | None,
    public_url: str,
    now: datetime,
) -> Bootstrap:
    """The default tenant, and the first admin (``admin_password``) or a setup link.

    Under the start-up lock: of several replicas started together on one empty database,
    exactly one creates the admin."""
    with db.startup_lock(), db.begin() as conn:
        tenant = ensure_default_tenant(conn, now=now)
        if conn.execute(select(func.count()).select_from(users)).scalar_one() > 0:
            return Bootstrap("existing", tenant)
        if admin_password is not None:
            create_admin(
                conn,
                tenant,
                hasher=hasher,
                username=BOOTSTRAP_USERNAME,
                password=admin_password,
                actor="system:bootstrap",
                now=now,
            )
            return Bootstrap("password", tenant)
        conn.execute(
            update(setup_tokens)
            .where(setup_tokens.c.purpose == "bootstrap", setup_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        secret = new_secret("setup")
        conn.execute(
            insert(setup_tokens).values(
                id=new_id("stp"),
                token_hash=secret.hash,
                purpose="bootstrap",
                created_at=now,
                expires_at=now + SETUP_LINK_TTL,
            )
        )
    return Bootstrap("link", tenant, f"{public_url}/setup#{secret.value}")


def claim_setup_link(
    conn: Connection,
    tenant: Tenant,
    *,
    hasher: PasswordHasher,
    token: str,
    username: str,
    password: str,
    now: datetime,
) -> User:
    """Spend the one-time link: create the first admin. Refused once any user exists."""
    token_hash = parse_secret(token, "setup")
    row = conn.execute(
        select(setup_tokens).where(
            setup_tokens.c.token_hash == token_hash, setup_tokens.c.purpose == "bootstrap"
        )
    ).first()
    if row is None or row.used_at is not None or now >= row.expires_at:
        raise InvalidToken("The setup link is unknown, expired or already used.")
    if conn.execute(select(func.count()).select_from(users)).scalar_one() > 0:
        raise InvalidToken("This installation already has users; the setup link is spent.")
    conn.execute(update(setup_tokens).where(setup_tokens.c.id == row.id).values(used_at=now))
    return create_admin(
        conn,
        tenant,
        hasher=hasher,
        username=username,
        password=password,
        actor="system:setup_link",
        now=now,
    )
