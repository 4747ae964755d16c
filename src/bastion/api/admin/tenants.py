"""``POST|GET /admin/tenants``: the tenants of the installation (default-tenant admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import Field
from sqlalchemy import Connection

from bastion.api.admin.common import iso, now, plain_name, read, write
from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, door_router
from bastion.api.openapi import raises
from bastion.api.responses import TenantList, TenantView
from bastion.errors import Conflict
from bastion.identity.tenant_admin import add_tenant
from bastion.identity.tenants import Tenant, list_tenants, validate_tenant_name

router = door_router()


class CreateTenantBody(StrictBody):
    name: str = Field(min_length=1, max_length=64)


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": iso(tenant.created_at)}


@router.post(
    "/tenants",
    response_model=TenantView,
    responses=raises(Conflict),
    status_code=201,
    summary="Create a tenant (409 when it exists)",
)
async def create(request: Request, body: CreateTenantBody) -> dict[str, Any]:
    principal = await authorize(request, "tenants.manage")
    name = plain_name(validate_tenant_name(body.name), "name")

    def work(conn: Connection) -> dict[str, Any]:
        return tenant_view(add_tenant(conn, principal, name, now=now(request)))

    return await write(request, work)


@router.get("/tenants", response_model=TenantList, summary="List the tenants")
async def list_all(request: Request) -> dict[str, Any]:
    await authorize(request, "tenants.read")
    found = await read(request, list_tenants)
    return {"tenants": [tenant_view(tenant) for tenant in found]}
