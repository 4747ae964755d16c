"""``bastion tenant create | list``, through the service the admin API calls."""

from __future__ import annotations

from typing import Any

from bastion.cli.common import (
    AsJson,
    DataDir,
    opened,
    operator,
    out,
    print_json,
    shown,
    table,
    tenant_app,
)
from bastion.identity.service_accounts import list_service_accounts
from bastion.identity.tenant_admin import add_tenant
from bastion.identity.tenants import list_tenants
from bastion.identity.users import list_users


@tenant_app.command("create")
def tenant_create(name: str, as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """Create a tenant (lower-case letters, digits, '-' and '_')."""
    with opened(data_dir) as rt, rt.db.begin() as conn:
        now = rt.clock.now()
        tenant = add_tenant(conn, operator(conn, now=now), name, now=now)
    if as_json:
        print_json(
            {"id": tenant.id, "name": tenant.name, "created_at": tenant.created_at.isoformat()}
        )
        return
    out.print(
        f"Created tenant [bold]{shown(tenant.name)}[/]. Next: its first admin, "
        f"bastion user create NAME --role admin --tenant {shown(tenant.name)} --password-stdin",
        highlight=False,
    )


@tenant_app.command("list")
def tenant_list(as_json: AsJson = False, data_dir: DataDir = None) -> None:
    """List tenants with their number of users and service accounts."""
    with opened(data_dir) as rt, rt.db.read() as conn:
        views: list[dict[str, Any]] = [
            {
                "id": tenant.id,
                "name": tenant.name,
                "users": len(list_users(conn, tenant_id=tenant.id)),
                "service_accounts": len(list_service_accounts(conn, tenant_id=tenant.id)),
                "created_at": tenant.created_at.isoformat(),
            }
            for tenant in list_tenants(conn)
        ]
    if as_json:
        print_json(views)
        return
    grid = table("Tenants", "name", "id", "users", "service accounts", "created")
    for view in views:
        grid.add_row(
            view["name"],
            view["id"],
            str(view["users"]),
            str(view["service_accounts"]),
            view["created_at"][:16].replace("T", " ") + " UTC",
        )
    out.print(grid)
