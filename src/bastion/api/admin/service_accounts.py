"""``/admin/service-accounts``: service accounts, their roles and their API keys.

A key is shown once, in the ``201`` answer that creates it; only its SHA-256 is
stored, lists show an id and the last four characters. Revoking a key or deleting
an account clears the guard's liveness cache after the commit, so the key stops
working at once here and within the guard's liveness window (≤ 0.5 s) elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic import Field, StrictInt
from sqlalchemy import Connection

from bastion.api.admin.common import (
    MAX_COLLECTIONS,
    MAX_ROLES,
    TenantParam,
    TenantScoped,
    admit,
    admit_all,
    enter_tenant,
    forget_credentials,
    iso,
    now,
    plain_name,
    read,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, door_router
from bastion.api.openapi import raises
from bastion.api.responses import (
    KeyList,
    NewKey,
    ServiceAccountDetail,
    ServiceAccountList,
    ServiceAccountView,
)
from bastion.domain import Principal
from bastion.errors import Conflict, NotFound
from bastion.identity.grants import grant_collections, grants_of
from bastion.identity.service_account_admin import create_account, delete_account, end_key, new_key
from bastion.identity.service_accounts import (
    ApiKeyRecord,
    ServiceAccount,
    list_api_keys,
    list_service_accounts,
    service_account_by_id,
)
from bastion.identity.tenants import tenant_by_id

router = door_router()


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


@router.post(
    "/service-accounts",
    response_model=ServiceAccountView,
    responses=raises(NotFound, Conflict),
    status_code=201,
    summary="Create a service account",
)
async def create(request: Request, body: CreateServiceAccountBody) -> dict[str, Any]:
    scope = await admit(request, "service_accounts.manage", body.tenant)
    name = plain_name(body.name, "name")
    collections = validate_collections(body.collections)

    def work(conn: Connection) -> dict[str, Any]:
        account = create_account(
            conn,
            scope.principal,
            tenant_by_id(conn, scope.tenant_id),
            name=name,
            roles=body.roles,
            collections=collections,
            now=now(request),
        )
        return account_view(conn, account, scope.tenant_name)

    return await write(request, work)


@router.get(
    "/service-accounts",
    response_model=ServiceAccountList,
    responses=raises(NotFound),
    summary="List service accounts",
)
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


@router.get(
    "/service-accounts/{account_id}",
    response_model=ServiceAccountDetail,
    responses=raises(NotFound),
    summary="A service account and its keys",
)
async def get(request: Request, account_id: str) -> dict[str, Any]:
    _, account = await _target(request, "service_accounts.read", account_id)
    at = now(request)

    def work(conn: Connection) -> dict[str, Any]:
        view = account_view(
            conn, account, tenant_names(conn, [account.tenant_id])[account.tenant_id]
        )
        view["keys"] = [key_view(key, at) for key in list_api_keys(conn, account.id)]
        return view

    return await read(request, work)


@router.delete(
    "/service-accounts/{account_id}",
    responses=raises(NotFound),
    status_code=204,
    summary="Delete an account",
)
async def delete(request: Request, account_id: str) -> Response:
    principal, account = await _target(request, "service_accounts.manage", account_id)
    await write(request, lambda conn: delete_account(conn, principal, account.id, now=now(request)))
    forget_credentials(request)
    return Response(status_code=204)


@router.post(
    "/service-accounts/{account_id}/keys",
    response_model=NewKey,
    responses=raises(NotFound),
    status_code=201,
    summary="Create an API key (shown once)",
)
async def create_key(
    request: Request, account_id: str, body: CreateKeyBody | None = None
) -> dict[str, Any]:
    principal, account = await _target(request, "keys.manage", account_id)
    expires_in = body.expires_in if body else None
    at = now(request)

    def work(conn: Connection) -> dict[str, Any]:
        made = new_key(conn, principal, account.id, expires_in=expires_in, now=at)
        return {**key_view(made.record, at), "key": made.secret}

    return await write(request, work)


@router.get(
    "/service-accounts/{account_id}/keys",
    response_model=KeyList,
    responses=raises(NotFound),
    summary="List keys (ids and hints only)",
)
async def list_keys(request: Request, account_id: str) -> dict[str, Any]:
    _, account = await _target(request, "service_accounts.read", account_id)
    at = now(request)
    keys = await read(request, lambda conn: list_api_keys(conn, account.id))
    return {"keys": [key_view(key, at) for key in keys]}


@router.delete(
    "/service-accounts/{account_id}/keys/{key_id}",
    responses=raises(NotFound),
    status_code=204,
    summary="Revoke a key",
)
async def revoke_key(request: Request, account_id: str, key_id: str) -> Response:
    principal, account = await _target(request, "keys.manage", account_id)
    await write(request, lambda conn: end_key(conn, principal, account, key_id, now=now(request)))
    forget_credentials(request)
    return Response(status_code=204)
