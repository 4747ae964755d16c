"""``bastion collection list``: every collection with its points and size on disk
(``bastion.vectors.usage``, which the console and the admin API can call too)."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli.common import AsJson, DataDir, collection_app, opened, out, print_json, table
from bastion.identity.tenants import list_tenants, require_tenant
from bastion.vectors.usage import collection_usage


def human_size(size: int) -> str:
    """1536 → ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@collection_app.command("list")
def collection_list(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's collections.", show_default=False)
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """List collections with their points and size on disk (vectors, payloads, index)."""
    with opened(data_dir) as rt:
        with rt.db.read() as conn:
            tenant_id = None if tenant is None else require_tenant(conn, tenant).id
            names = {found.id: found.name for found in list_tenants(conn)}
        usage = collection_usage(rt.db, rt.data_dir, tenant_id=tenant_id)
    if as_json:
        print_json(
            [
                {
                    "tenant": names.get(item.tenant_id, item.tenant_id),
                    "name": item.name,
                    "id": item.id,
                    "vector_size": item.dim,
                    "distance": item.distance,
                    "points": item.points,
                    "disk_bytes": item.disk_bytes,
                }
                for item in usage
            ]
        )
        return
    grid = table("Collections", "tenant", "name", "vectors", "points", "on disk")
    for item in usage:
        grid.add_row(
            names.get(item.tenant_id, item.tenant_id),
            item.name,
            f"{item.dim} {item.distance}",
            f"{item.points:,}",
            human_size(item.disk_bytes),
        )
    out.print(grid)
    if not usage:
        out.print("[dim]→ no collections yet; a client creates them (PUT /collections/NAME)[/]")
