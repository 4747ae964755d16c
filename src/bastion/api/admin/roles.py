"""``POST|GET /admin/roles``, ``DELETE /admin/roles/{name}``: built-in and custom roles.

A custom role is a set of registered permission names (``authz.validate_custom_role``).
An admin cannot create a role holding a permission they do not hold, and a role still
granted to someone cannot be deleted (``409 role_in_use``), so deleting a role never
silently strips anyone's access nor removes a tenant's last admin.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import Connection

from bastion.api.admin.common import (
    TenantParam,
    TenantScoped,
    admit,
    forget_credentials,
    now,
    plain_name,
    read,
    write,
)
from bastion.api.guard import door_router
from bastion.api.openapi import raises
from bastion.api.responses import RoleList, RoleView
from bastion.authz import BUILTIN_ROLES, GRANTABLE, Role, validate_custom_role
from bastion.errors import Conflict, NotFound
from bastion.identity.rules import custom_roles_of
from bastion.identity.tenant_admin import add_role, remove_role

router = door_router()


class CreateRoleBody(TenantScoped):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field("", max_length=500)
    permissions: list[str] = Field(min_length=1, max_length=len(GRANTABLE) + 8)


def role_view(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": sorted(role.permissions),
        "builtin": role.builtin,
    }


@router.post(
    "/roles",
    response_model=RoleView,
    responses=raises(NotFound, Conflict),
    status_code=201,
    summary="Create a custom role",
)
async def create(request: Request, body: CreateRoleBody) -> dict[str, Any]:
    scope = await admit(request, "roles.manage", body.tenant)
    role = validate_custom_role(plain_name(body.name, "name"), body.permissions, body.description)

    def work(conn: Connection) -> dict[str, Any]:
        return role_view(add_role(conn, scope.principal, scope.tenant_id, role, now=now(request)))

    result = await write(request, work)
    forget_credentials(request)
    return result


@router.get(
    "/roles",
    response_model=RoleList,
    responses=raises(NotFound),
    summary="Built-in and custom roles",
)
async def list_all(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    scope = await admit(request, "roles.read", tenant)
    custom = await read(request, lambda conn: custom_roles_of(conn, scope.tenant_id))
    roles = [*BUILTIN_ROLES.values(), *custom.values()]
    return {"tenant": scope.tenant_name, "roles": [role_view(role) for role in roles]}


@router.delete(
    "/roles/{name}",
    responses=raises(NotFound, Conflict),
    status_code=204,
    summary="Delete a custom role not in use",
)
async def delete(request: Request, name: str, tenant: TenantParam = None) -> Response:
    scope = await admit(request, "roles.manage", tenant)
    if name in BUILTIN_ROLES:
        raise Conflict(f"'{name}' is a built-in role; it cannot be deleted.", code="role_builtin")

    def work(conn: Connection) -> None:
        remove_role(conn, scope.principal, scope.tenant_id, name, now=now(request))

    await write(request, work)
    forget_credentials(request)
    return Response(status_code=204)
