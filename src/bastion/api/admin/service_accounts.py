"""``/admin/service-accounts``: service accounts, their roles and their API keys.

A key is shown once, in the ``201`` answer that creates it; only its SHA-256 is
stored, lists show an id and the last four characters. Revoking a key or deleting
an account clears the guard's liveness cache after the commit, so the key stops
working at once here and within the guard's liveness window (≤ 0.5 s) elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field, StrictInt
from sqlalchemy import Connection

from bastion.api.admin.common import (
    MAX_COLLECTIONS,
    MAX_ROLES,
    TenantParam,
    TenantScoped,
    admit,
    admit_all,
    audit,
    check_grantable,
    enter_tenant,
    forget_credentials,
    grant_collections,
    iso,
    own_roles,
    plain_name,
    read,
    refusals_audited,
    roles_held,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, runtime
from bastion.audit import safe_text
from bastion.authz import resolve_roles
from bastion.domain import Principal
from bastion.errors import NotFound
from bastion.identity.grants import grants_of, remove_grants, replace_grants
from bastion.identity.rules import custom_roles_of
from bastion.identity.service_accounts import (
    ApiKeyRecord,
    ServiceAccount,
    api_key_by_id,
    create_api_key,
    create_service_account,
    delete_service_account,
    list_api_keys,
    list_service_accounts,
    revoke_api_key,
    service_account_by_id,
)

router = APIRouter()


class CreateServiceAccountBody(TenantScoped):
    name: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(max_length=MAX_ROLES)
    collections: list[str] | None = Field(None, max_length=MAX_COLLECTIONS)


class CreateKeyBody(StrictBody):
    expires_in: StrictInt | None = Field(None, description="Lifetime in seconds (60 s to 366 d).")


def account_view(conn: Connection, account: ServiceAccount, tenant_name: str) -> dict[str, Any]:
    grants = grants_of(conn, "service_account", account.id)
    return {
        "id": account.id,
        "name": account.name,
        "tenant": tenant_name,
        "status": account.status,
        "roles": list(dict.fromkeys(grant.role for grant in grants)),
        "collections": grant_collections(grants),
        "created_at": iso(account.created_at),
    }


def key_view(key: ApiKeyRecord, now: datetime) -> dict[str, Any]:
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and now >= key.expires_at:
        status = "expired"
    else:
        status = "active"
    return {
        "id": key.id,
        "service_account_id": key.service_account_id,
        "hint": key.hint,
        "status": status,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
    }


def _not_found() -> NotFound:
    return NotFound("Service account not found.", code="service_account_not_found")


async def _target(
    request: Request, action: str, account_id: str
) -> tuple[Principal, ServiceAccount]:
    principal = await authorize(request, action)
    account = await read(request, lambda conn: service_account_by_id(conn, account_id))
    await enter_tenant(request, principal, action, account.tenant_id, _not_found())
    return principal, account


@router.post("/service-accounts", status_code=201, summary="Create a service account")
async def create(request: Request, body: CreateServiceAccountBody) -> dict[str, Any]:
    scope = await admit(request, "service_accounts.manage", body.tenant)
    name = plain_name(body.name, "name")
    ceiling = await own_roles(request, scope.principal)
    rt = runtime(request)

    def work(conn: Connection) -> dict[str, Any]:
        now = rt.clock.now()
        roles = resolve_roles(body.roles, custom_roles_of(conn, scope.tenant_id))
        collections = validate_collections(body.collections)
        with refusals_audited(
            request,
            conn,
            scope.principal,
            permission="service_accounts.manage",
            tenant_id=scope.tenant_id,
            resource=f"tenant:{scope.tenant_id}",
        ):
            check_grantable(ceiling, roles)
        account = create_service_account(conn, tenant_id=scope.tenant_id, name=name, now=now)
        names = [role.name for role in roles]
        replace_grants(
            conn,
            "service_account",
            account.id,
            tenant_id=scope.tenant_id,
            roles=names,
            collections=collections,
            now=now,
        )
        audit(
            request,
            conn,
            scope.principal,
            "service_account.created",
            tenant_id=scope.tenant_id,
            resource=f"service_account:{account.id}",
            details={
                "service_account_id": account.id,
                "name": account.name,
                "roles": names,
                "collections": collections,
            },
        )
        return account_view(conn, account, scope.tenant_name)

    return await write(request, work)


@router.get("/service-accounts", summary="List service accounts")
async def list_all(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    _, tenant_id = await admit_all(request, "service_accounts.read", tenant)

    def work(conn: Connection) -> dict[str, Any]:
        found = list_service_accounts(conn, tenant_id=tenant_id)
        names = tenant_names(conn, (account.tenant_id for account in found))
        return {
            "service_accounts": [
                account_view(conn, account, names[account.tenant_id]) for account in found
            ]
        }

    return await read(request, work)


@router.get("/service-accounts/{account_id}", summary="A service account and its keys")
async def get(request: Request, account_id: str) -> dict[str, Any]:
    _, account = await _target(request, "service_accounts.read", account_id)
    now = runtime(request).clock.now()

    def work(conn: Connection) -> dict[str, Any]:
        view = account_view(
            conn, account, tenant_names(conn, [account.tenant_id])[account.tenant_id]
        )
        view["keys"] = [key_view(key, now) for key in list_api_keys(conn, account.id)]
        return view

    return await read(request, work)


@router.delete("/service-accounts/{account_id}", status_code=204, summary="Delete an account")
async def delete(request: Request, account_id: str) -> Response:
    principal, account = await _target(request, "service_accounts.manage", account_id)
    ceiling = await own_roles(request, principal)
    rt = runtime(request)

    def work(conn: Connection) -> None:
        current = service_account_by_id(conn, account.id)
        resource = f"service_account:{current.id}"
        with refusals_audited(
            request,
            conn,
            principal,
            permission="service_accounts.manage",
            tenant_id=current.tenant_id,
            resource=resource,
        ):
            custom = custom_roles_of(conn, current.tenant_id)
            check_grantable(
                ceiling, roles_held(grants_of(conn, "service_account", current.id), custom)
            )
        delete_service_account(conn, current.id, now=rt.clock.now())
        remove_grants(conn, "service_account", current.id)
        audit(
            request,
            conn,
            principal,
            "service_account.deleted",
            tenant_id=current.tenant_id,
            resource=resource,
            details={"service_account_id": current.id, "name": safe_text(current.name)},
        )

    await write(request, work)
    forget_credentials(request)
    return Response(status_code=204)


@router.post(
    "/service-accounts/{account_id}/keys",
    status_code=201,
    summary="Create an API key (shown once)",
)
async def create_key(
    request: Request, account_id: str, body: CreateKeyBody | None = None
) -> dict[str, Any]:
    principal, account = await _target(request, "keys.manage", account_id)
    rt = runtime(request)
    expires_in = body.expires_in if body else None

    def work(conn: Connection) -> dict[str, Any]:
        now = rt.clock.now()
        current = service_account_by_id(conn, account.id)
        made = create_api_key(conn, service_account_id=current.id, expires_in=expires_in, now=now)
        audit(
            request,
            conn,
            principal,
            "api_key.created",
            tenant_id=current.tenant_id,
            resource=f"api_key:{made.record.id}",
            details={
                "key_id": made.record.id,
                "service_account_id": current.id,
                "expires_at": iso(made.record.expires_at),
            },
        )
        return {**key_view(made.record, now), "key": made.secret}

    return await write(request, work)


@router.get("/service-accounts/{account_id}/keys", summary="List keys (ids and hints only)")
async def list_keys(request: Request, account_id: str) -> dict[str, Any]:
    _, account = await _target(request, "service_accounts.read", account_id)
    now = runtime(request).clock.now()
    keys = await read(request, lambda conn: list_api_keys(conn, account.id))
    return {"keys": [key_view(key, now) for key in keys]}


@router.delete(
    "/service-accounts/{account_id}/keys/{key_id}", status_code=204, summary="Revoke a key"
)
async def revoke_key(request: Request, account_id: str, key_id: str) -> Response:
    principal, account = await _target(request, "keys.manage", account_id)
    rt = runtime(request)

    def work(conn: Connection) -> None:
        key = api_key_by_id(conn, service_account_id=account.id, key_id=key_id)
        if key.revoked_at is not None:
            return  # already revoked: nothing changes, nothing to record
        revoke_api_key(conn, service_account_id=account.id, key_id=key.id, now=rt.clock.now())
        audit(
            request,
            conn,
            principal,
            "api_key.revoked",
            tenant_id=account.tenant_id,
            resource=f"api_key:{key.id}",
            details={"key_id": key.id, "service_account_id": account.id},
        )

    await write(request, work)
    forget_credentials(request)
    return Response(status_code=204)
