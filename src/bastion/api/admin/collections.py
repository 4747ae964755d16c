"""``GET /admin/collections``: the caller's collections with their points and size on disk.

Qdrant's own routes (``/collections``) carry no size; this one, beside them, serves the
console's collection list and scripts that watch growth. It lists only what the caller's
grants let it read (``collections.read`` on each collection, decided by the one door).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bastion.api.guard import authorize, door_router, runtime, tenant_rules
from bastion.api.responses import CollectionSizes
from bastion.authz import Effect, Resource, decide
from bastion.vectors.usage import collection_usage

router = door_router()


@router.get(
    "/collections",
    response_model=CollectionSizes,
    summary="My tenant's collections that I may read, with points and bytes on disk",
)
async def sizes(request: Request) -> dict[str, Any]:
    principal = await authorize(request, "collections.read")
    rt = runtime(request)
    found = await run_in_threadpool(
        lambda: collection_usage(rt.db, rt.data_dir, tenant_id=principal.tenant_id)
    )
    policy, roles = await tenant_rules(request, principal.tenant_id)
    now = request.app.state.clock.now()

    def readable(name: str) -> bool:
        resource = Resource(tenant_id=principal.tenant_id, collection=name)
        decision = decide(
            principal, "collections.read", resource, policy=policy, now=now, custom_roles=roles
        )
        return decision.effect is Effect.ALLOW

    return {
        "collections": [
            {
                "name": item.name,
                "dim": item.dim,
                "distance": item.distance,
                "points": item.points,
                "disk_bytes": item.disk_bytes,
            }
            for item in found
            if readable(item.name)
        ]
    }
