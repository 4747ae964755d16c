"""``PATCH|DELETE /admin/users/{id}``, ``POST /admin/users/{id}/reset-factors``,
``POST /admin/users/{id}/unlock``.

The use cases are ``identity.lifecycle`` (roles and status, deprovisioning, factor
resets, with the grant ceiling and the last-admin rule decided by ``authz.decide``).
After the commit the route clears the door's liveness cache and this process's verified
token cache, so every live token of a suspended or deleted user stops working at once
here and within the liveness window (≤ 0.5 s) on other replicas. A role change takes
effect the same way (the door re-reads grants).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from bastion.api.admin.common import (
    MAX_COLLECTIONS,
    MAX_ROLES,
    forget_credentials,
    now,
    tenant_names,
    validate_collections,
    write,
)
from bastion.api.admin.users import target_user, user_view
from bastion.api.bodies import StrictBody
from bastion.api.guard import door_router, runtime
from bastion.api.openapi import raises
from bastion.api.responses import FactorsReset, Unlocked, UserView
from bastion.authn.devices import revoke as revoke_devices
from bastion.authn.unlock import unlock_user
from bastion.errors import Conflict, NotFound, ValidationError
from bastion.identity.lifecycle import UserChange, delete_user, reset_user_factors, update_user

router = door_router()


class PatchUserBody(StrictBody):
    roles: list[str] | None = Field(None, max_length=MAX_ROLES)
    collections: list[str] | None = Field(None, max_length=MAX_COLLECTIONS)
    status: Literal["active", "suspended"] | None = None


@router.patch(
    "/users/{user_id}",
    response_model=UserView,
    responses=raises(NotFound, Conflict),
    summary="Change a user's roles or status",
)
async def patch(request: Request, user_id: str, body: PatchUserBody) -> dict[str, Any]:
    given = body.model_fields_set
    if not given & {"roles", "collections", "status"}:
        raise ValidationError("Send at least one of roles, collections, status.")
    if "roles" in given and body.roles is None:
        raise ValidationError("roles must be a list (use [] for no roles).", field="roles")
    if "status" in given and body.status is None:
        raise ValidationError("status must be 'active' or 'suspended'.", field="status")
    principal, found = await target_user(request, "users.manage", user_id)
    change = UserChange(
        roles=body.roles,
        collections=validate_collections(body.collections) if "collections" in given else None,
        collections_given="collections" in given,
        status=body.status,
    )

    def work(conn: Connection) -> dict[str, Any]:
        user = update_user(conn, principal, found.id, change, now=now(request))
        return user_view(conn, user, tenant_names(conn, [user.tenant_id])[user.tenant_id])

    result = await write(request, work)
    forget_credentials(request, subject=found.id)
    return result


@router.delete(
    "/users/{user_id}",
    responses=raises(NotFound, Conflict),
    status_code=204,
    summary="Deprovision a user",
)
async def delete(request: Request, user_id: str) -> Response:
    principal, found = await target_user(request, "users.manage", user_id)
    await write(request, lambda conn: delete_user(conn, principal, found.id, now=now(request)))
    forget_credentials(request, subject=found.id)
    return Response(status_code=204)


@router.post(
    "/users/{user_id}/reset-factors",
    response_model=FactorsReset,
    responses=raises(NotFound),
    summary="Remove every factor of a user (they enrol again; their sessions end)",
)
async def reset(request: Request, user_id: str) -> dict[str, Any]:
    principal, found = await target_user(request, "factors.reset", user_id)

    def work(conn: Connection) -> tuple[int, int]:
        at = now(request)
        removed = reset_user_factors(conn, principal, found.id, now=at)
        # A remembered device is a possession factor too (issue 15): it goes with the rest.
        return removed, revoke_devices(conn, principal, found, None, reason="factors_reset", now=at)

    removed, devices = await write(request, work)
    forget_credentials(request, subject=found.id)
    return {
        "user_id": found.id,
        "factors_removed": removed,
        "sessions_revoked": True,
        "devices_revoked": devices,
    }


@router.post(
    "/users/{user_id}/unlock",
    response_model=Unlocked,
    responses=raises(NotFound),
    summary="Clear a user's failed sign-in and second-factor counts (audited)",
)
async def unlock(request: Request, user_id: str) -> dict[str, Any]:
    principal, found = await target_user(request, "users.manage", user_id)
    deps = runtime(request).authn
    done = await run_in_threadpool(lambda: unlock_user(deps, principal, found.id))
    return {
        "user_id": found.id,
        "sign_in_failures": done.sign_in_failures,
        "second_factor_failures": done.second_factor_failures,
    }
