"""Remembered devices in the database (the credential's hash only; ``risk.devices``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from bastion.risk.devices import DeviceRecord, new_device_credential
from bastion.risk.policy import RiskPolicy
from bastion.risk.schema import risk_devices
from bastion.storage import new_id

__all__ = ["find_device", "list_devices", "remember_device", "revoke_device", "touch_device"]

MAX_DEVICE_NAME = 128
_DEVICE_BY_HASH = select(risk_devices).where(risk_devices.c.credential_hash == bindparam("hash"))


def _device(row: Any) -> DeviceRecord:
    return DeviceRecord(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        last_ip=row.last_ip,
        revoked_at=row.revoked_at,
    )


def remember_device(
    conn: Connection,
    *,
    user_id: str,
    name: str,
    ip: str | None,
    now: datetime,
    policy: RiskPolicy,
) -> tuple[DeviceRecord, str]:
    """Store a new remembered device; returns it and the credential (shown once)."""
    secret = new_device_credential()
    record = DeviceRecord(
        id=new_id("dev"),
        user_id=user_id,
        name=(name.strip() or "device")[:MAX_DEVICE_NAME],
        created_at=now,
        expires_at=now + timedelta(days=policy.device_ttl_days),
        last_used_at=now,
        last_ip=ip,
    )
    conn.execute(
        insert(risk_devices),
        {
            "id": record.id,
            "user_id": user_id,
            "credential_hash": secret.hash,
            "name": record.name,
            "created_at": now,
            "expires_at": record.expires_at,
            "last_used_at": now,
            "last_ip": ip,
        },
    )
    return record, secret.value


def find_device(conn: Connection, credential_hash: str) -> DeviceRecord | None:
    row = conn.execute(_DEVICE_BY_HASH, {"hash": credential_hash}).first()
    return _device(row) if row is not None else None


def list_devices(conn: Connection, *, user_id: str) -> list[DeviceRecord]:
    """The user's devices, newest first (revoked and expired ones included, marked)."""
    rows = conn.execute(
        select(risk_devices)
        .where(risk_devices.c.user_id == user_id)
        .order_by(risk_devices.c.created_at.desc())
    )
    return [_device(row) for row in rows]


def touch_device(conn: Connection, device_id: str, *, ip: str | None, now: datetime) -> None:
    conn.execute(
        update(risk_devices)
        .where(risk_devices.c.id == device_id)
        .values(last_used_at=now, last_ip=ip)
    )


def revoke_device(conn: Connection, *, user_id: str, device_id: str | None, now: datetime) -> int:
    """Revoke one device of ``user_id`` (``device_id``) or all of them (None); returns how
    many were revoked (0: none of this user's, or already revoked)."""
    where = [risk_devices.c.user_id == user_id, risk_devices.c.revoked_at.is_(None)]
    if device_id is not None:
        where.append(risk_devices.c.id == device_id)
    return conn.execute(update(risk_devices).where(*where).values(revoked_at=now)).rowcount
