"""``POST|GET /admin/tenants``: the tenants of the installation (default-tenant admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import Connection

from bastion.api.admin.common import audit, iso, plain_name, read, write
from bastion.api.bodies import StrictBody
from bastion.api.guard import authorize, runtime
from bastion.identity.tenants import Tenant, create_tenant, list_tenants, validate_tenant_name

router = APIRouter()


class CreateTenantBody(StrictBody):
    name: str = Field(min_length=1, max_length=64)


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": iso(tenant.created_at)}


@router.post("/tenants", status_code=201, summary="Create a tenant (409 when it exists)")
async def create(request: Request, body: CreateTenantBody) -> dict[str, Any]:
    principal = await authorize(request, "tenants.manage")
    name = plain_name(validate_tenant_name(body.name), "name")
    rt = runtime(request)

    def work(conn: Connection) -> dict[str, Any]:
        tenant = create_tenant(conn, name, now=rt.clock.now())
        audit(
            request,
            conn,
            principal,
            "tenant.created",
            tenant_id=tenant.id,
            resource=f"tenant:{tenant.id}",
            details={"name": tenant.name},
        )
        return tenant_view(tenant)

    return await write(request, work)


@router.get("/tenants", summary="List the tenants")
async def list_all(request: Request) -> dict[str, Any]:
    await authorize(request, "tenants.read")
    found = await read(request, list_tenants)
    return {"tenants": [tenant_view(tenant) for tenant in found]}
