"""``PATCH|DELETE /admin/users/{id}``, ``POST /admin/users/{id}/reset-factors``.

Suspending or deleting a user revokes every session in the same transaction; after
the commit the route clears the guard's liveness cache and this process's verified
token cache, so every live token of the user stops working at once here and within
the guard's liveness window (≤ 0.5 s) on other replicas. A role change takes effect
the same way (the guard re-reads grants). Two rules hold for every change:

- an admin cannot grant, nor manage a holder of, a role beyond their own permissions;
- the last active admin of a tenant cannot lose that status (roles, suspend, delete):
  ``409 last_admin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlalchemy import Connection

from bastion.api.admin.common import (
    MAX_COLLECTIONS,
    MAX_ROLES,
    audit,
    check_grantable,
    forget_credentials,
    grant_collections,
    is_admin,
    own_roles,
    refusals_audited,
    roles_held,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.admin.users import live_user, target_user, user_view
from bastion.api.bodies import StrictBody
from bastion.api.guard import runtime
from bastion.audit import safe_text
from bastion.authn.enrollment import reset_factors
from bastion.authn.sessions import revoke_user_sessions
from bastion.authz import Role, resolve_roles
from bastion.domain import Grant, Principal
from bastion.errors import Conflict, ValidationError
from bastion.identity.grants import grants_in_tenant, grants_of, remove_grants, replace_grants
from bastion.identity.rules import custom_roles_of
from bastion.identity.users import User, deprovision_user, list_users, set_status

router = APIRouter()


class PatchUserBody(StrictBody):
    roles: list[str] | None = Field(None, max_length=MAX_ROLES)
    collections: list[str] | None = Field(None, max_length=MAX_COLLECTIONS)
    status: Literal["active", "suspended"] | None = None


def ensure_not_last_admin(
    conn: Connection, user: User, custom: Mapping[str, Role], *, stays_admin: bool
) -> None:
    """``409 last_admin`` if ``user`` is the tenant's last active admin and would stop being one."""
    if stays_admin or not user.active:
        return
    grants = grants_in_tenant(conn, "user", user.tenant_id)
    if not is_admin(grants.get(user.id, ()), custom):
        return
    active = {other.id for other in list_users(conn, tenant_id=user.tenant_id) if other.active}
    others = [
        other
        for other, held in grants.items()
        if other != user.id and other in active and is_admin(held, custom)
    ]
    if not others:
        raise Conflict(
            "This is the last active admin of the tenant; make another user admin first.",
            code="last_admin",
        )


def _state(grants: tuple[Grant, ...], status: str) -> dict[str, Any]:
    return {
        "roles": list(dict.fromkeys(grant.role for grant in grants)),
        "collections": grant_collections(grants),
        "status": status,
    }


def _user_change_refusals(
    request: Request, conn: Connection, principal: Principal, user: User
) -> AbstractContextManager[None]:
    """Refused changes to ``user`` (beyond one's roles, last admin) are audited as failures."""
    return refusals_audited(
        request,
        conn,
        principal,
        permission="users.manage",
        tenant_id=user.tenant_id,
        resource=f"user:{user.id}",
        failure=("user.updated", {"user_id": user.id, "username": safe_text(user.username)}),
    )


@router.patch("/users/{user_id}", summary="Change a user's roles or status")
async def patch(request: Request, user_id: str, body: PatchUserBody) -> dict[str, Any]:
    if not body.model_fields_set & {"roles", "collections", "status"}:
        raise ValidationError("Send at least one of roles, collections, status.")
    if "roles" in body.model_fields_set and body.roles is None:
        raise ValidationError("roles must be a list (use [] for no roles).", field="roles")
    if "status" in body.model_fields_set and body.status is None:
        raise ValidationError("status must be 'active' or 'suspended'.", field="status")
    principal, found = await target_user(request, "users.manage", user_id)
    ceiling = await own_roles(request, principal)
    rt = runtime(request)

    def work(conn: Connection) -> dict[str, Any]:
        now = rt.clock.now()
        user = live_user(conn, found.id)
        previous = user.status
        custom = custom_roles_of(conn, user.tenant_id)
        before = grants_of(conn, "user", user.id)
        roles = (
            resolve_roles(body.roles, custom)
            if body.roles is not None
            else roles_held(before, custom)
        )
        role_names = (
            [role.name for role in roles]
            if body.roles is not None
            else list(dict.fromkeys(grant.role for grant in before))
        )
        collections = (
            validate_collections(body.collections)
            if "collections" in body.model_fields_set
            else grant_collections(before)
        )
        status = body.status or user.status
        after = tuple(Grant(name, user.tenant_id, _tuple(collections)) for name in role_names)
        resource = f"user:{user.id}"
        with _user_change_refusals(request, conn, principal, user):
            check_grantable(ceiling, roles_held(before, custom))
            check_grantable(ceiling, roles)
            ensure_not_last_admin(
                conn, user, custom, stays_admin=status == "active" and is_admin(after, custom)
            )
        if body.roles is not None or "collections" in body.model_fields_set:
            replace_grants(
                conn,
                "user",
                user.id,
                tenant_id=user.tenant_id,
                roles=role_names,
                collections=collections,
                now=now,
            )
        if status != user.status:
            user = set_status(conn, user.id, status, now=now)
            if status == "suspended":
                revoke_user_sessions(conn, user.id, reason="user_suspended", now=now)
        suspended = status == "suspended" and previous != "suspended"
        audit(
            request,
            conn,
            principal,
            "user.suspended" if suspended else "user.updated",
            tenant_id=user.tenant_id,
            resource=resource,
            details={
                "user_id": user.id,
                "username": safe_text(user.username),
                "before": _state(before, previous),
                "after": _state(grants_of(conn, "user", user.id), user.status),
            },
        )
        return user_view(conn, user, tenant_names(conn, [user.tenant_id])[user.tenant_id])

    result = await write(request, work)
    forget_credentials(request, subject=found.id)
    return result


def _tuple(collections: list[str] | None) -> tuple[str, ...] | None:
    return tuple(collections) if collections is not None else None


@router.delete("/users/{user_id}", status_code=204, summary="Deprovision a user")
async def delete(request: Request, user_id: str) -> Response:
    principal, found = await target_user(request, "users.manage", user_id)
    ceiling = await own_roles(request, principal)
    rt = runtime(request)

    def work(conn: Connection) -> None:
        now = rt.clock.now()
        user = live_user(conn, found.id)
        custom = custom_roles_of(conn, user.tenant_id)
        before = grants_of(conn, "user", user.id)
        resource = f"user:{user.id}"
        with _user_change_refusals(request, conn, principal, user):
            check_grantable(ceiling, roles_held(before, custom))
            ensure_not_last_admin(conn, user, custom, stays_admin=False)
        revoke_user_sessions(conn, user.id, reason="user_deleted", now=now)
        remove_grants(conn, "user", user.id)
        reset_factors(conn, user_id=user.id)
        deprovision_user(conn, user.id, now=now)
        audit(
            request,
            conn,
            principal,
            "user.deleted",
            tenant_id=user.tenant_id,
            resource=resource,
            details={
                "user_id": user.id,
                "username": safe_text(user.username),
                "before": _state(before, user.status),
            },
        )

    await write(request, work)
    forget_credentials(request, subject=found.id)
    return Response(status_code=204)


@router.post(
    "/users/{user_id}/reset-factors",
    summary="Remove every factor of a user (they enrol again; their sessions end)",
)
async def reset(request: Request, user_id: str) -> dict[str, Any]:
    principal, found = await target_user(request, "factors.reset", user_id)
    ceiling = await own_roles(request, principal)
    rt = runtime(request)

    def work(conn: Connection) -> dict[str, Any]:
        now = rt.clock.now()
        user = live_user(conn, found.id)
        custom = custom_roles_of(conn, user.tenant_id)
        resource = f"user:{user.id}"
        with refusals_audited(
            request,
            conn,
            principal,
            permission="factors.reset",
            tenant_id=user.tenant_id,
            resource=resource,
        ):
            check_grantable(ceiling, roles_held(grants_of(conn, "user", user.id), custom))
        removed = reset_factors(conn, user_id=user.id)
        revoke_user_sessions(conn, user.id, reason="factors_reset", now=now)
        audit(
            request,
            conn,
            principal,
            "user.factors_reset",
            tenant_id=user.tenant_id,
            resource=resource,
            details={
                "user_id": user.id,
                "username": safe_text(user.username),
                "factors_removed": removed,
            },
        )
        return {"user_id": user.id, "factors_removed": removed, "sessions_revoked": True}

    result = await write(request, work)
    forget_credentials(request, subject=found.id)
    return result
