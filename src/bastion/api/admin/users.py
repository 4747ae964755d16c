"""``POST|GET /admin/users``, ``GET /admin/users/{id}``: create, list and read users.

A user created without a password gets a one-time enrollment token (shown once to
the admin, only its hash stored) with which they choose a password; either way they
enrol a second factor at their first sign-in.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import Field
from sqlalchemy import Connection

from bastion.api.admin.common import (
    MAX_COLLECTIONS,
    MAX_ROLES,
    TenantParam,
    TenantScoped,
    admit,
    admit_all,
    enter_tenant,
    iso,
    now,
    plain_name,
    read,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.guard import authorize, door_router, runtime
from bastion.api.openapi import raises
from bastion.api.responses import CreatedUser, UserDetail, UserList
from bastion.api.views import factor_view
from bastion.authn.enrollment import list_factors
from bastion.domain import Principal
from bastion.errors import Conflict, NotFound
from bastion.identity.grants import grant_collections, grants_of
from bastion.identity.lifecycle import create_user_account
from bastion.identity.tenants import tenant_by_id
from bastion.identity.users import User, list_users, live_user, validate_username

router = door_router()


class CreateUserBody(TenantScoped):
    username: str = Field(min_length=1, max_length=128)
    password: str | None = Field(None, min_length=1, max_length=1024)
    roles: list[str] = Field(max_length=MAX_ROLES)
    collections: list[str] | None = Field(None, max_length=MAX_COLLECTIONS)


def user_view(conn: Connection, user: User, tenant_name: str) -> dict[str, Any]:
    """A user as the admin API shows it: roles and status, never a secret or hash."""
    grants = grants_of(conn, "user", user.id)
    return {
        "id": user.id,
        "username": user.username,
        "tenant": tenant_name,
        "status": user.status,
        "roles": list(dict.fromkeys(grant.role for grant in grants)),
        "collections": grant_collections(grants),
        "password_set": user.password_hash is not None,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }


def user_not_found() -> NotFound:
    return NotFound("User not found.", code="user_not_found")


async def target_user(request: Request, action: str, user_id: str) -> tuple[Principal, User]:
    """Authorise ``action``, load the user, and admit the caller to the user's tenant."""
    principal = await authorize(request, action)
    user = await read(request, lambda conn: live_user(conn, user_id))
    await enter_tenant(request, principal, action, user.tenant_id, user_not_found())
    return principal, user


@router.post(
    "/users",
    response_model=CreatedUser,
    response_model_exclude_unset=True,
    responses=raises(NotFound, Conflict),
    status_code=201,
    summary="Create a user (enrollment token if no password)",
)
async def create(request: Request, body: CreateUserBody) -> dict[str, Any]:
    scope = await admit(request, "users.manage", body.tenant)
    rt = runtime(request)
    username = plain_name(validate_username(body.username), "username")
    collections = validate_collections(body.collections)

    def work(conn: Connection) -> dict[str, Any]:
        made = create_user_account(
            conn,
            scope.principal,
            tenant_by_id(conn, scope.tenant_id),
            hasher=rt.hasher,
            username=username,
            password=body.password,
            roles=body.roles,
            collections=collections,
            now=now(request),
        )
        view = user_view(conn, made.user, scope.tenant_name)
        if made.link is not None:
            view["enrollment"] = {
                "token": made.link.token,
                "url": f"{rt.settings.resolved_public_url}/setup/enroll#{made.link.token}",
                "expires_at": iso(made.link.expires_at),
            }
        return view

    return await write(request, work)


@router.get(
    "/users",
    response_model=UserList,
    responses=raises(NotFound),
    summary="List users (an installation admin sees every tenant)",
)
async def list_all(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    _, tenant_id = await admit_all(request, "users.read", tenant)

    def work(conn: Connection) -> dict[str, Any]:
        found = list_users(conn, tenant_id=tenant_id)
        names = tenant_names(conn, (user.tenant_id for user in found))
        return {"users": [user_view(conn, user, names[user.tenant_id]) for user in found]}

    return await read(request, work)


@router.get(
    "/users/{user_id}",
    response_model=UserDetail,
    responses=raises(NotFound),
    summary="A user: roles, status and factors (no secrets)",
)
async def get(request: Request, user_id: str) -> dict[str, Any]:
    _, user = await target_user(request, "users.read", user_id)

    def work(conn: Connection) -> dict[str, Any]:
        current = live_user(conn, user.id)
        view = user_view(conn, current, tenant_names(conn, [current.tenant_id])[current.tenant_id])
        view["factors"] = [factor_view(factor) for factor in list_factors(conn, current.id)]
        return view

    return await read(request, work)
