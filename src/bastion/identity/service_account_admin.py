"""Service accounts and their keys as administrators change them: each use case runs in
the caller's write transaction, asks ``check`` where a rule applies (no account with
roles beyond the caller's own) and records its own event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record, safe_text
from bastion.authz import Resource, resolve_roles
from bastion.domain import Principal
from bastion.identity.authorization import check
from bastion.identity.grants import grants_of, remove_grants, replace_grants
from bastion.identity.lifecycle import roles_held
from bastion.identity.rules import custom_roles_of
from bastion.identity.service_accounts import (
    NewApiKey,
    ServiceAccount,
    api_key_by_id,
    create_api_key,
    create_service_account,
    delete_service_account,
    revoke_api_key,
    service_account_by_id,
)
from bastion.identity.tenants import Tenant


def create_account(
    conn: Connection,
    actor: Principal,
    tenant: Tenant,
    *,
    name: str,
    roles: Sequence[str],
    collections: Sequence[str] | None,
    now: datetime,
) -> ServiceAccount:
    granted = resolve_roles(roles, custom_roles_of(conn, tenant.id))
    check(
        conn,
        actor,
        "service_accounts.manage",
        Resource(tenant.id, roles=granted),
        subject=f"tenant:{tenant.id}",
        now=now,
    )
    account = create_service_account(conn, tenant_id=tenant.id, name=name, now=now)
    names = [role.name for role in granted]
    replace_grants(
        conn,
        "service_account",
        account.id,
        tenant_id=tenant.id,
        roles=names,
        collections=collections,
        now=now,
    )
    record(
        conn,
        "service_account.created",
        actor=actor.id,
        tenant_id=tenant.id,
        resource=f"service_account:{account.id}",
        details={
            "service_account_id": account.id,
            "name": account.name,
            "roles": names,
            "collections": list(collections) if collections is not None else None,
        },
        now=now,
    )
    return account


def delete_account(
    conn: Connection, actor: Principal, account_id: str, *, now: datetime
) -> ServiceAccount:
    """Revoke every key of the account and delete it."""
    current = service_account_by_id(conn, account_id)
    subject = f"service_account:{current.id}"
    held = roles_held(
        grants_of(conn, "service_account", current.id), custom_roles_of(conn, current.tenant_id)
    )
    check(
        conn,
        actor,
        "service_accounts.manage",
        Resource(current.tenant_id, roles=held),
        subject=subject,
        now=now,
    )
    delete_service_account(conn, current.id, now=now)
    remove_grants(conn, "service_account", current.id)
    record(
        conn,
        "service_account.deleted",
        actor=actor.id,
        tenant_id=current.tenant_id,
        resource=subject,
        details={"service_account_id": current.id, "name": safe_text(current.name)},
        now=now,
    )
    return current


def new_key(
    conn: Connection, actor: Principal, account_id: str, *, expires_in: int | None, now: datetime
) -> NewApiKey:
    """A new key (its secret is in the answer only, its hash in the table)."""
    current = service_account_by_id(conn, account_id)
    made = create_api_key(conn, service_account_id=current.id, expires_in=expires_in, now=now)
    expires_at = made.record.expires_at
    record(
        conn,
        "api_key.created",
        actor=actor.id,
        tenant_id=current.tenant_id,
        resource=f"api_key:{made.record.id}",
        details={
            "key_id": made.record.id,
            "service_account_id": current.id,
            "expires_at": expires_at.isoformat() if expires_at is not None else None,
        },
        now=now,
    )
    return made


def end_key(
    conn: Connection, actor: Principal, account: ServiceAccount, key_id: str, *, now: datetime
) -> bool:
    """Revoke a key; ``False`` when it already was (nothing changes, nothing recorded)."""
    key = api_key_by_id(conn, service_account_id=account.id, key_id=key_id)
    if key.revoked_at is not None:
        return False
    revoke_api_key(conn, service_account_id=account.id, key_id=key.id, now=now)
    record(
        conn,
        "api_key.revoked",
        actor=actor.id,
        tenant_id=account.tenant_id,
        resource=f"api_key:{key.id}",
        details={"key_id": key.id, "service_account_id": account.id},
        now=now,
    )
    return True
