"""``POST|GET /admin/users``, ``GET /admin/users/{id}``: create, list and read users.

A user created without a password gets a one-time enrollment token (shown once to
the admin, only its hash stored) with which they choose a password; either way they
enrol a second factor at their first sign-in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
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
    grant_collections,
    iso,
    own_roles,
    plain_name,
    read,
    refusals_audited,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.guard import authorize, runtime
from bastion.authn.enrollment import list_factors
from bastion.authz import resolve_roles
from bastion.errors import NotFound
from bastion.identity.grants import grants_of
from bastion.identity.provisioning import provision_user
from bastion.identity.rules import custom_roles_of
from bastion.identity.users import (
    User,
    create_enrollment_link,
    list_users,
    user_by_id,
    validate_username,
)

router = APIRouter()


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


def live_user(conn: Connection, user_id: str) -> User:
    """The user ``user_id`` unless deleted (a deleted user is gone: 404)."""
    try:
        user = user_by_id(conn, user_id)
    except NotFound:
        raise user_not_found() from None
    if user.status == "deleted":
        raise user_not_found()
    return user


async def target_user(request: Request, action: str, user_id: str) -> tuple[Any, User]:
    """Authorise ``action``, load the user, and admit the caller to the user's tenant."""
    principal = await authorize(request, action)
    user = await read(request, lambda conn: live_user(conn, user_id))
    await enter_tenant(request, principal, action, user.tenant_id, user_not_found())
    return principal, user


@router.post("/users", status_code=201, summary="Create a user (enrollment token if no password)")
async def create(request: Request, body: CreateUserBody) -> dict[str, Any]:
    scope = await admit(request, "users.manage", body.tenant)
    ceiling = await own_roles(request, scope.principal)
    rt = runtime(request)
    username = plain_name(validate_username(body.username), "username")

    def work(conn: Connection) -> dict[str, Any]:
        now = rt.clock.now()
        custom = custom_roles_of(conn, scope.tenant_id)
        roles = resolve_roles(body.roles, custom)
        collections = validate_collections(body.collections)
        with refusals_audited(
            request,
            conn,
            scope.principal,
            permission="users.manage",
            tenant_id=scope.tenant_id,
            resource=f"tenant:{scope.tenant_id}",
        ):
            check_grantable(ceiling, roles)
        role_names = [role.name for role in roles]
        user = provision_user(
            conn,
            hasher=rt.hasher,
            tenant_id=scope.tenant_id,
            username=username,
            password=body.password,
            roles=role_names,
            collections=collections,
            now=now,
        )
        link = None if user.password_hash else create_enrollment_link(conn, user.id, now=now)
        audit(
            request,
            conn,
            scope.principal,
            "user.created",
            tenant_id=scope.tenant_id,
            resource=f"user:{user.id}",
            details={
                "user_id": user.id,
                "username": user.username,
                "roles": role_names,
                "status": user.status,
                "tenant": scope.tenant_name,
                "enrollment": link is not None,
            },
        )
        view = user_view(conn, user, scope.tenant_name)
        if link is not None:
            view["enrollment"] = {
                "token": link.token,
                "url": f"{rt.settings.resolved_public_url}/setup/enroll#{link.token}",
                "expires_at": iso(link.expires_at),
            }
        return view

    return await write(request, work)


@router.get("/users", summary="List users (an installation admin sees every tenant)")
async def list_all(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    _, tenant_id = await admit_all(request, "users.read", tenant)

    def work(conn: Connection) -> dict[str, Any]:
        found = list_users(conn, tenant_id=tenant_id)
        names = tenant_names(conn, (user.tenant_id for user in found))
        return {"users": [user_view(conn, user, names[user.tenant_id]) for user in found]}

    return await read(request, work)


@router.get("/users/{user_id}", summary="A user: roles, status and factors (no secrets)")
async def get(request: Request, user_id: str) -> dict[str, Any]:
    _, user = await target_user(request, "users.read", user_id)

    def work(conn: Connection) -> dict[str, Any]:
        current = live_user(conn, user.id)
        view = user_view(conn, current, tenant_names(conn, [current.tenant_id])[current.tenant_id])
        view["factors"] = [
            {key: value for key, value in factor.public().items()}
            for factor in list_factors(conn, current.id)
        ]
        return view

    return await read(request, work)
