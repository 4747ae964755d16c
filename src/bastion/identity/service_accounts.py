"""Service accounts and their API keys (shown once, stored as SHA-256 hashes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from bastion.errors import Conflict, NotFound, ValidationError
from bastion.storage import new_id
from bastion.storage.schema import api_keys, service_accounts
from bastion.text import check_name
from bastion.tokens import hint, new_secret

MAX_KEY_LIFETIME = 366 * 86400


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    tenant_id: str
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    service_account_id: str
    hint: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ApiKeyState:
    """What authenticating with a key needs to know about it and its account, now."""

    key_id: str
    expires_at: datetime | None
    revoked_at: datetime | None
    account_id: str
    account_name: str
    account_status: str
    tenant_id: str

    def refusal(self, now: datetime) -> str | None:
        """Why the key cannot be used at ``now`` (``revoked``, ``expired``,
        ``account_inactive``), or ``None`` when it can."""
        if self.revoked_at is not None:
            return "revoked"
        if self.account_status != "active":
            return "account_inactive"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return None


@dataclass(frozen=True)
class NewApiKey:
    record: ApiKeyRecord
    secret: str  # shown once, never stored


def _account(row: object) -> ServiceAccount:
    r = row._mapping  # type: ignore[attr-defined]
    return ServiceAccount(r["id"], r["tenant_id"], r["name"], r["status"], r["created_at"])


def _key(row: object) -> ApiKeyRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return ApiKeyRecord(
        r["id"],
        r["service_account_id"],
        r["hint"],
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
    )


def create_service_account(
    conn: Connection, *, tenant_id: str, name: str, now: datetime
) -> ServiceAccount:
    name = check_name(name, field="name").strip()
    if not 1 <= len(name) <= 128:
        raise ValidationError("Service account names are 1 to 128 characters.", field="name")
    if find_service_account(conn, tenant_id=tenant_id, name=name):
        raise Conflict(f"Service account '{name}' already exists.", code="service_account_exists")
    account_id = new_id("sa")
    conn.execute(
        insert(service_accounts).values(
            id=account_id, tenant_id=tenant_id, name=name, status="active", created_at=now
        )
    )
    return service_account_by_id(conn, account_id)


def find_service_account(conn: Connection, *, tenant_id: str, name: str) -> ServiceAccount | None:
    row = conn.execute(
        select(service_accounts).where(
            service_accounts.c.tenant_id == tenant_id,
            service_accounts.c.name == name,
            service_accounts.c.status == "active",
        )
    ).first()
    return _account(row) if row else None


def service_account_by_id(conn: Connection, account_id: str) -> ServiceAccount:
    row = conn.execute(select(service_accounts).where(service_accounts.c.id == account_id)).first()
    if row is None or row.status == "deleted":
        raise NotFound("Service account not found.", code="service_account_not_found")
    return _account(row)


def list_service_accounts(conn: Connection, *, tenant_id: str | None) -> list[ServiceAccount]:
    query = select(service_accounts).where(service_accounts.c.status == "active")
    if tenant_id is not None:
        query = query.where(service_accounts.c.tenant_id == tenant_id)
    return [_account(r) for r in conn.execute(query.order_by(service_accounts.c.name))]


def create_api_key(
    conn: Connection, *, service_account_id: str, expires_in: int | None, now: datetime
) -> NewApiKey:
    if expires_in is not None and not 60 <= expires_in <= MAX_KEY_LIFETIME:
        raise ValidationError(
            f"expires_in must be between 60 seconds and {MAX_KEY_LIFETIME} seconds (366 days).",
            field="expires_in",
        )
    secret = new_secret("api_key")
    record = ApiKeyRecord(
        id=new_id("key"),
        service_account_id=service_account_id,
        hint=hint(secret.value),
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
        revoked_at=None,
    )
    conn.execute(
        insert(api_keys).values(
            id=record.id,
            service_account_id=service_account_id,
            key_hash=secret.hash,
            hint=record.hint,
            created_at=now,
            expires_at=record.expires_at,
        )
    )
    return NewApiKey(record=record, secret=secret.value)


def list_api_keys(conn: Connection, service_account_id: str) -> list[ApiKeyRecord]:
    rows = conn.execute(
        select(api_keys)
        .where(api_keys.c.service_account_id == service_account_id)
        .order_by(api_keys.c.created_at)
    )
    return [_key(r) for r in rows]


def revoke_api_key(
    conn: Connection, *, service_account_id: str, key_id: str, now: datetime
) -> ApiKeyRecord:
    row = conn.execute(
        select(api_keys).where(
            api_keys.c.id == key_id, api_keys.c.service_account_id == service_account_id
        )
    ).first()
    if row is None:
        raise NotFound("API key not found.", code="api_key_not_found")
    if row.revoked_at is None:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now))
    return _key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())


def revoke_all_keys(conn: Connection, service_account_id: str, *, now: datetime) -> None:
    conn.execute(
        update(api_keys)
        .where(api_keys.c.service_account_id == service_account_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def delete_service_account(conn: Connection, account_id: str, *, now: datetime) -> ServiceAccount:
    """Revoke every key and mark the account deleted.

    The name is suffixed with the id so that it can be used again (names are unique
    per tenant in the table); audit events keep the original name.
    """
    account = service_account_by_id(conn, account_id)
    revoke_all_keys(conn, account.id, now=now)
    conn.execute(
        update(service_accounts)
        .where(service_accounts.c.id == account.id)
        .values(status="deleted", name=f"{account.name[:80]}~{account.id}")
    )
    return account


def api_key_by_id(conn: Connection, *, service_account_id: str, key_id: str) -> ApiKeyRecord:
    row = conn.execute(
        select(api_keys).where(
            api_keys.c.id == key_id, api_keys.c.service_account_id == service_account_id
        )
    ).first()
    if row is None:
        raise NotFound("API key not found.", code="api_key_not_found")
    return _key(row)


def find_api_key(conn: Connection, key_id: str) -> ApiKeyRecord | None:
    """A key by its id alone, whatever its account (the operator's ``bastion key revoke``)."""
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    return _key(row) if row else None


def api_key_state(conn: Connection, key_hash: str) -> ApiKeyState | None:
    """The key whose SHA-256 is ``key_hash`` with its account, or ``None`` when unknown."""
    row = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.expires_at,
            api_keys.c.revoked_at,
            service_accounts.c.id.label("account_id"),
            service_accounts.c.name,
            service_accounts.c.status,
            service_accounts.c.tenant_id,
        )
        .join(service_accounts, service_accounts.c.id == api_keys.c.service_account_id)
        .where(api_keys.c.key_hash == key_hash)
    ).first()
    if row is None:
        return None
    return ApiKeyState(
        key_id=row.id,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        account_id=row.account_id,
        account_name=row.name,
        account_status=row.status,
        tenant_id=row.tenant_id,
    )
