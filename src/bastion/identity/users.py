"""Human users: creation, lookup and lifecycle (active → suspended → deleted)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, insert, select, update

from bastion.errors import Conflict, NotFound, ValidationError
from bastion.storage import new_id
from bastion.storage.schema import users

UserStatus = Literal["active", "suspended", "deleted"]
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str
    username: str
    password_hash: str | None
    status: UserStatus
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"


def _row(row: object) -> User:
    r = row._mapping  # type: ignore[attr-defined]
    return User(
        id=r["id"],
        tenant_id=r["tenant_id"],
        username=r["username"],
        password_hash=r["password_hash"],
        status=r["status"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def normalize_username(username: str) -> str:
    """NFKC + case-fold, so visually equal names cannot coexist."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def validate_username(username: str) -> str:
    name = normalize_username(username)
    if not _USERNAME.fullmatch(name):
        raise ValidationError(
            "Usernames are 1 to 128 characters: letters, digits and . _ @ + -, "
            "starting with a letter or digit.",
            field="username",
        )
    return name


def create_user(
    conn: Connection,
    *,
    tenant_id: str,
    username: str,
    password_hash: str | None,
    now: datetime,
) -> User:
    name = validate_username(username)
    if conn.execute(select(users.c.id).where(users.c.username == name)).first():
        raise Conflict(f"User '{name}' already exists.", code="user_exists")
    user_id = new_id("usr")
    conn.execute(
        insert(users).values(
            id=user_id,
            tenant_id=tenant_id,
            username=name,
            password_hash=password_hash,
            status="active",
            created_at=now,
            updated_at=now,
        )
    )
    return user_by_id(conn, user_id)


def find_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        select(users).where(users.c.username == normalize_username(username))
    ).first()
    return _row(row) if row else None


def user_by_id(conn: Connection, user_id: str) -> User:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound("User not found.", code="user_not_found")
    return _row(row)


def list_users(conn: Connection, *, tenant_id: str | None) -> list[User]:
    query = select(users).where(users.c.status != "deleted").order_by(users.c.username)
    if tenant_id is not None:
        query = query.where(users.c.tenant_id == tenant_id)
    return [_row(r) for r in conn.execute(query)]


def set_status(conn: Connection, user_id: str, status: UserStatus, *, now: datetime) -> User:
    conn.execute(update(users).where(users.c.id == user_id).values(status=status, updated_at=now))
    return user_by_id(conn, user_id)


def set_password_hash(conn: Connection, user_id: str, password_hash: str, *, now: datetime) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_at=now)
    )
