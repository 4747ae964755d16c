"""Remembered devices (issue 15): issued at a full MFA sign-in, listed and revoked by
their user and by admins.

The credential itself is ``risk.devices``' (``bst_dev_`` + 256 random bits, stored as
its SHA-256, per user, expiring after the policy's ``devices.ttl_days``); this module
issues it in the sign-in's own transaction, and records ``device.remembered`` and
``device.revoked``. A device presented at a later sign-in is scored by the risk engine
(``device_recognised``) and, on a low-risk sign-in, counts as the possession factor
(``authn.adaptive``): password + device = ``aal2``. A revoked one that comes back is a
reason of its own (``device_revoked``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record
from bastion.authn.adaptive import risk_policy
from bastion.domain import Principal
from bastion.errors import NotFound
from bastion.identity.credentials import revoke_devices
from bastion.identity.rules import load_policy
from bastion.identity.users import User
from bastion.risk import DeviceRecord
from bastion.risk.store import list_devices, remember_device

__all__ = ["DEVICE_NAME", "devices_of", "remember", "revoke"]

DEVICE_NAME = 64  # characters of a device's name (the user agent when none is given)


def remember(
    conn: Connection,
    user: User,
    *,
    name: str | None,
    user_agent: str | None,
    ip: str | None,
    session_id: str,
    now: datetime,
) -> str:
    """Issue a credential for the device that just finished a full MFA sign-in of
    ``user``; the credential, to show once (only its hash is kept)."""
    label = (name or user_agent or "device").strip()[:DEVICE_NAME] or "device"
    policy = risk_policy(load_policy(conn, user.tenant_id))
    device, credential = remember_device(
        conn, user_id=user.id, name=label, ip=ip, now=now, policy=policy
    )
    record(
        conn,
        "device.remembered",
        actor=user.id,
        tenant_id=user.tenant_id,
        resource=f"device:{device.id}",
        details={
            "device_id": device.id,
            "name": device.name,
            "expires_at": device.expires_at.isoformat(),
            "session_id": session_id,
        },
        now=now,
    )
    return credential


def devices_of(conn: Connection, user_id: str) -> list[DeviceRecord]:
    """The user's remembered devices, newest first (revoked and expired ones too)."""
    return list_devices(conn, user_id=user_id)


def revoke(
    conn: Connection,
    actor: Principal,
    user: User,
    device_id: str | None,
    *,
    reason: str | None = None,
    now: datetime,
) -> int:
    """Revoke one device of ``user`` (``NotFound`` when it is not one of theirs, or is
    revoked already) or, ``device_id`` None, every one; records ``device.revoked`` (with
    ``reason``)."""
    count = revoke_devices(
        conn, actor_id=actor.id, user_id=user.id, tenant_id=user.tenant_id,
        device_id=device_id, reason=reason, now=now,
    )  # fmt: skip
    if device_id is not None and count == 0:
        raise NotFound("No such remembered device.", code="device_not_found")
    return count
