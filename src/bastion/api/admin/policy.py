"""``GET|PUT /admin/policy``: the tenant's MFA and assurance policy document.

``PUT`` takes the whole document (missing keys take the secure defaults) and
validates it with ``authz.Policy.from_document``: unknown keys, unknown actions,
wrong types and requirements below the floors are a ``422`` naming them. Its ``risk``
section (the risk engine's weights, thresholds and lists, docs/risk.md) is validated by
``risk.RiskPolicy.from_document`` the same way (``risk.travel.max_speed_kmh must be …``),
stored as what differs from the defaults (``risk.non_default``), and shown complete. The change
is audited as ``policy.updated`` with one ``{"field", "before", "after"}`` entry per
changed key (per action for ``actions``). The guard caches a tenant's rules for at
most 0.5 s; this process's cache is cleared after the commit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Body, Request
from sqlalchemy import Connection

from bastion.api.admin.common import TenantParam, admit, forget_credentials, now, read, write
from bastion.api.guard import door_router
from bastion.api.openapi import raises
from bastion.api.responses import PolicyDocument
from bastion.authz import Policy
from bastion.errors import NotFound
from bastion.identity.rules import load_policy
from bastion.identity.tenant_admin import replace_policy
from bastion.risk import load_risk_policy
from bastion.risk.policy import non_default

router = door_router()


def full_document(policy: Policy) -> dict[str, Any]:
    """The policy document with its ``risk`` section complete (defaults where unset)."""
    document = policy.to_document()
    document["risk"] = load_risk_policy(document["risk"]).to_document()
    return document


@router.get(
    "/policy",
    response_model=PolicyDocument,
    responses=raises(NotFound),
    summary="The tenant's MFA and assurance policy",
)
async def get(request: Request, tenant: TenantParam = None) -> dict[str, Any]:
    scope = await admit(request, "policy.read", tenant)
    policy = await read(request, lambda conn: load_policy(conn, scope.tenant_id))
    return full_document(policy)


@router.put(
    "/policy",
    response_model=PolicyDocument,
    responses=raises(NotFound),
    summary="Replace the tenant's MFA and assurance policy",
)
async def put(
    request: Request,
    document: dict[str, Any] = Body(..., description="The policy document (docs/permissions.md)."),
    tenant: TenantParam = None,
) -> dict[str, Any]:
    scope = await admit(request, "policy.manage", tenant)
    policy = Policy.from_document(document)
    risk = load_risk_policy(dict(policy.risk_document))  # a 422 naming the key it refuses
    policy = replace(policy, risk_document=non_default(risk))

    def work(conn: Connection) -> dict[str, Any]:
        saved = replace_policy(conn, scope.principal, scope.tenant_id, policy, now=now(request))
        return full_document(saved)

    result = await write(request, work)
    forget_credentials(request)
    return result
