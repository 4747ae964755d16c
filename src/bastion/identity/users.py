"""Human users: creation, lookup and lifecycle (active → suspended → deleted)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, insert, select, update

from bastion.errors import Conflict, InvalidToken, NotFound, ValidationError
from bastion.storage import new_id
from bastion.storage.schema import setup_tokens, users
from bastion.text import check_name
from bastion.tokens import new_secret, parse_secret

UserStatus = Literal["active", "suspended", "deleted"]
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
ENROLLMENT_LINK_TTL = timedelta(days=3)
ENROLLMENT = "enrollment"


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
    check_name(username, field="username")
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
        raise username_unavailable()
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


def username_unavailable() -> Conflict:
    """Usernames are unique per installation, so a taken one is refused whoever holds it.
    The answer is the same whether it is held in the caller's tenant or another, and does
    not repeat the name (issue 11.13: another tenant's users are not confirmed)."""
    return Conflict("This username is not available; choose another.", code="username_unavailable")


def find_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        select(users).where(users.c.username == normalize_username(username))
    ).first()
    return _row(row) if row else None


def find_user_by_id(conn: Connection, user_id: str) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _row(row) if row else None


def user_by_id(conn: Connection, user_id: str) -> User:
    user = find_user_by_id(conn, user_id)
    if user is None:
        raise NotFound("User not found.", code="user_not_found")
    return user


def live_user(conn: Connection, user_id: str) -> User:
    """The user ``user_id`` unless deleted (a deleted user is gone: ``user_not_found``)."""
    user = find_user_by_id(conn, user_id)
    if user is None or user.status == "deleted":
        raise NotFound("User not found.", code="user_not_found")
    return user


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


def deprovision_user(conn: Connection, user_id: str, *, now: datetime) -> User:
    """Mark the user deleted, drop the password hash and spend pending enrollment links.

    Sessions, grants and factors are the caller's (``authn.sessions``, ``grants``).
    """
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(status="deleted", password_hash=None, updated_at=now)
    )
    _spend_enrollment_links(conn, user_id, now=now)
    return user_by_id(conn, user_id)


@dataclass(frozen=True)
class EnrollmentLink:
    token: str  # shown once to the admin who created the user; only its hash is stored
    expires_at: datetime


def create_enrollment_link(
    conn: Connection, user_id: str, *, now: datetime, ttl: timedelta = ENROLLMENT_LINK_TTL
) -> EnrollmentLink:
    """A one-time ``bst_enroll_…`` token with which a user created without a password sets one.

    Earlier unused links of the same user stop working.
    """
    _spend_enrollment_links(conn, user_id, now=now)
    secret = new_secret("enroll")
    expires_at = now + ttl
    conn.execute(
        insert(setup_tokens).values(
            id=new_id("stp"),
            token_hash=secret.hash,
            purpose=ENROLLMENT,
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return EnrollmentLink(secret.value, expires_at)


def spend_enrollment_link(conn: Connection, token: str, *, now: datetime) -> User:
    """Mark a presented enrollment token used and return its (active) user.

    Raises ``InvalidToken`` for an unknown, expired or used token, or a user who is no
    longer active. Inside the caller's transaction: if setting the password then fails
    (a weak password), the rollback leaves the link unspent.
    """
    token_hash = parse_secret(token, "enroll")
    row = conn.execute(
        select(setup_tokens).where(
            setup_tokens.c.token_hash == token_hash, setup_tokens.c.purpose == ENROLLMENT
        )
    ).first()
    if row is None or row.used_at is not None or now >= row.expires_at or row.user_id is None:
        raise InvalidToken("The enrollment link is unknown, expired or already used.")
    user = user_by_id(conn, row.user_id)
    if not user.active:
        raise InvalidToken("The enrollment link is unknown, expired or already used.")
    conn.execute(update(setup_tokens).where(setup_tokens.c.id == row.id).values(used_at=now))
    return user


def _spend_enrollment_links(conn: Connection, user_id: str, *, now: datetime) -> None:
    conn.execute(
        update(setup_tokens)
        .where(
            setup_tokens.c.user_id == user_id,
            setup_tokens.c.purpose == ENROLLMENT,
            setup_tokens.c.used_at.is_(None),
        )
        .values(used_at=now)
    )
