"""``GET|PUT /admin/policy``: the tenant's MFA and assurance policy document.

``PUT`` takes the whole document (missing keys take the secure defaults) and
validates it with ``authz.Policy.from_document``: unknown keys, unknown actions,
wrong types and requirements below the floors are a ``422`` naming them. The change
is audited as ``policy.updated`` with one ``{"field", "before", "after"}`` entry per
changed key (per action for ``actions``). The guard caches a tenant's rules for at
most 0.5 s; this process's cache is cleared after the commit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from sqlalchemy import Connection

from bastion.api.admin.common import TenantParam, admit, audit, forget_credentials, read, write
from bastion.api.guard import runtime
from bastion.authz import Policy
from bastion.identity.rules import load_policy, save_policy

router = APIRouter()


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two policy documents, one entry per key or action."""
    found: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after)):
        if key == "actions":
            old, new = before.get(key, {}), after.get(key, {})
            for action in sorted(set(old) | set(new)):
                if old.get(action) != new.get(action):
                    found.append(
                        {
                            "field": f"actions.{action}",
                            "before": old.get(action),
                            "after": new.get(action),
                        }
                    )
        elif before.get(key) != after.get(key):
            found.append({"field": key, "before": before.get(key), "after": after.get(key)})
    return found


@router.get("/policy", summary="The tenant's MFA and assurance policy")
async def get(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    scope = await admit(request, "policy.read", tenant)
    policy = await read(request, lambda conn: load_policy(conn, scope.tenant_id))
    return policy.to_document()


@router.put("/policy", summary="Replace the tenant's MFA and assurance policy")
async def put(
    request: Request,
    document: dict[str, Any] = Body(..., description="The policy document (docs/permissions.md)."),
    tenant: TenantParam = None,
) -> dict[str, Any]:
    scope = await admit(request, "policy.manage", tenant)
    policy = Policy.from_document(document)
    rt = runtime(request)

    def work(conn: Connection) -> dict[str, Any]:
        before = load_policy(conn, scope.tenant_id).to_document()
        save_policy(conn, scope.tenant_id, policy, now=rt.clock.now())
        after = policy.to_document()
        audit(
            request,
            conn,
            scope.principal,
            "policy.updated",
            tenant_id=scope.tenant_id,
            resource="policy",
            details={"changes": changes(before, after)},
        )
        return after

    result = await write(request, work)
    forget_credentials(request)
    return result
