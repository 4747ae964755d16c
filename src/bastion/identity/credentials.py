"""What a user holds to sign in, as the directory ends it: sessions, factors and
remembered devices.

``authn`` creates sessions, enrols factors and remembers devices; suspending, deleting or
resetting a user (``identity.lifecycle``, the CLI), a password change and "sign out
everywhere" (``authn``) end them through these functions. The policy's lock-out guard asks
which admins could not reach ``aal3``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from bastion.audit import record
from bastion.storage.risk_schema import risk_devices
from bastion.storage.schema import factors, recovery_codes, role_grants, sessions, users


def revoke_user_sessions(conn: Connection, user_id: str, *, reason: str, now: datetime) -> None:
    """Every live session of the user ends (each token of them stops working)."""
    conn.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def revoke_devices(
    conn: Connection,
    *,
    actor_id: str | None,
    user_id: str,
    tenant_id: str,
    device_id: str | None = None,
    reason: str | None = None,
    now: datetime,
) -> int:
    """Revoke one remembered device of the user (``device_id``) or every one (None) and
    record ``device.revoked`` with ``reason`` (``password_changed``, ``user_suspended`` …);
    how many were revoked (0: none live, nothing recorded). A revoked credential that
    comes back is ``device_revoked`` to the risk engine: it never stands in for a factor."""
    # The statement of ``risk.store.revoke_device`` (identity may not import risk).
    where = [risk_devices.c.user_id == user_id, risk_devices.c.revoked_at.is_(None)]
    if device_id is not None:
        where.append(risk_devices.c.id == device_id)
    count = int(conn.execute(update(risk_devices).where(*where).values(revoked_at=now)).rowcount)
    if count:
        record(
            conn,
            "device.revoked",
            actor=actor_id,
            tenant_id=tenant_id,
            resource=f"device:{device_id}" if device_id else f"user:{user_id}",
            reason=reason,
            details={"device_id": device_id, "user_id": user_id, "count": count},
            now=now,
        )
    return count


def reset_factors(conn: Connection, *, user_id: str) -> int:
    """Administrative reset: every factor and recovery code of the user is removed."""
    removed = conn.execute(delete(factors).where(factors.c.user_id == user_id)).rowcount
    conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    return int(removed)


def admins_without_aal3_factor(conn: Connection, *, tenant_id: str) -> list[str]:
    """The usernames of the tenant's active admins who hold no ``aal3``-capable factor
    (an active, device-bound WebAuthn credential: BE = 0), sorted."""
    admins = (
        select(users.c.id, users.c.username)
        .join(role_grants, role_grants.c.principal_id == users.c.id)
        .where(
            role_grants.c.tenant_id == tenant_id,
            role_grants.c.principal_kind == "user",
            role_grants.c.role == "admin",
            users.c.status == "active",
        )
        .distinct()
    )
    capable = set(
        conn.execute(
            select(factors.c.user_id).where(
                factors.c.type == "webauthn",
                factors.c.status == "active",
                factors.c.backup_eligible.is_(False),
            )
        ).scalars()
    )
    return sorted(row.username for row in conn.execute(admins) if row.id not in capable)
