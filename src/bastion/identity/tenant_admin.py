"""A tenant's own rules and the tenants themselves, as administrators change them: custom
roles (none beyond the caller's own permissions, none deleted while granted), the
policy document (every change recorded field by field), new tenants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bastion.audit import record
from bastion.authz import Policy, Resource, Role
from bastion.domain import Principal
from bastion.errors import BastionError, Conflict
from bastion.identity.authorization import check
from bastion.identity.credentials import admins_without_aal3_factor
from bastion.identity.grants import role_holders
from bastion.identity.rules import create_custom_role, delete_custom_role, load_policy, save_policy
from bastion.identity.tenants import Tenant, create_tenant
from bastion.storage import CommitThenRaise


class AdminLockout(BastionError):
    """A policy that would lock administrators out of administration (400)."""

    code = "admin_lockout"
    title = "The policy would lock administrators out"


def add_tenant(conn: Connection, actor: Principal, name: str, *, now: datetime) -> Tenant:
    tenant = create_tenant(conn, name, now=now)
    record(
        conn,
        "tenant.created",
        actor=actor.id,
        tenant_id=tenant.id,
        resource=f"tenant:{tenant.id}",
        details={"name": tenant.name},
        now=now,
    )
    return tenant


def add_role(
    conn: Connection, actor: Principal, tenant_id: str, role: Role, *, now: datetime
) -> Role:
    subject = f"role:{role.name}"
    check(conn, actor, "roles.manage", Resource(tenant_id, roles=(role,)), subject=subject,
          now=now)  # fmt: skip
    create_custom_role(conn, tenant_id=tenant_id, role=role, now=now)
    record(
        conn,
        "role.created",
        actor=actor.id,
        tenant_id=tenant_id,
        resource=subject,
        details={"role": role.name, "permissions": sorted(role.permissions)},
        now=now,
    )
    return role


def remove_role(
    conn: Connection, actor: Principal, tenant_id: str, name: str, *, now: datetime
) -> Role:
    """Delete a custom role that nobody holds (``409 role_in_use`` otherwise)."""
    holders = role_holders(conn, tenant_id=tenant_id, role=name)
    removed = delete_custom_role(conn, tenant_id=tenant_id, name=name)
    if holders:
        raise Conflict(
            f"Role '{name}' is granted to {holders} user(s) or service account(s); "
            "change their roles first.",
            code="role_in_use",
        )
    record(
        conn,
        "role.deleted",
        actor=actor.id,
        tenant_id=tenant_id,
        resource=f"role:{removed.name}",
        details={"role": removed.name},
        now=now,
    )
    return removed


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
        elif key == "risk":  # nested sections: one entry per setting (risk.travel.tolerance_km)
            found += _nested_changes(key, before.get(key) or {}, after.get(key) or {})
        elif before.get(key) != after.get(key):
            found.append({"field": key, "before": before.get(key), "after": after.get(key)})
    return found


def _nested_changes(path: str, before: Any, after: Any) -> list[dict[str, Any]]:
    """Leaf by leaf (an absent section counts as empty), up to ``risk.a.b.c``."""
    sections = (before is None or isinstance(before, dict)) and (
        after is None or isinstance(after, dict)
    )
    if sections and (before or after) and path.count(".") < 4:
        old, new = before or {}, after or {}
        found: list[dict[str, Any]] = []
        for key in sorted(set(old) | set(new)):
            found += _nested_changes(f"{path}.{key}", old.get(key), new.get(key))
        return found
    if before == after:
        return []
    return [{"field": path, "before": before, "after": after}]


def replace_policy(
    conn: Connection, actor: Principal, tenant_id: str, policy: Policy, *, now: datetime
) -> Policy:
    before = load_policy(conn, tenant_id).to_document()
    # No lock-out by policy: aal3 for administration (``admin_requires_aal3``, or the
    # permission that could undo it, ``policy.manage``, raised to aal3) needs every active
    # admin to hold a factor that reaches it (a device-bound security key), or they lose
    # administration.
    locks = policy.admin_requires_aal3 or policy.requirement("policy.manage").acr == "aal3"
    lacking = admins_without_aal3_factor(conn, tenant_id=tenant_id) if locks else []
    if lacking:
        record(
            conn,
            "policy.updated",
            outcome="failure",
            actor=actor.id,
            tenant_id=tenant_id,
            resource="policy",
            reason="admin_lockout",
            details={"admins": lacking},
            now=now,
        )
        raise CommitThenRaise(
            AdminLockout(
                "Requiring aal3 for administration would lock these admins out: they hold "
                "no factor that reaches aal3 (a device-bound security key): "
                + ", ".join(lacking)
                + ". Have them register one first.",
                errors=lacking,
            )
        )
    save_policy(conn, tenant_id, policy, now=now)
    record(
        conn,
        "policy.updated",
        actor=actor.id,
        tenant_id=tenant_id,
        resource="policy",
        details={"changes": changes(before, policy.to_document())},
        now=now,
    )
    return policy
