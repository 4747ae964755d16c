"""Remembered devices: a per-user, per-device credential issued after a full MFA login.

The credential is an opaque secret (``bst_dev_`` + 256 random bits, ``tokens.opaque``);
only its SHA-256 is stored (``risk_devices``), looked up by hash like an API key, so no
secret is compared with ``==``. It expires (30 days by default, ``risk.devices.ttl_days``)
and the user or an admin can revoke it.

A recognised device is a *possession* factor (``factors.catalog`` REMEMBERED_DEVICE):
with the password it reaches ``aal2`` on a low-risk login without a prompt. It never
stands in for the prompt the risk engine asks for at a higher level, and a revoked one
that comes back is a risk reason of its own (``device_revoked``).

``device_state`` is pure: the caller loads the record by hash and passes the clock's now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bastion.errors import InvalidToken
from bastion.tokens import NewSecret, new_secret, parse_secret

__all__ = [
    "DeviceRecord",
    "DeviceState",
    "device_credential_hash",
    "device_state",
    "new_device_credential",
]

MAX_DEVICE_NAME = 128


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A stored remembered device (never the credential itself)."""

    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    last_ip: str | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class DeviceState(StrEnum):
    NONE = "none"  # no credential presented
    RECOGNISED = "recognised"  # this user's, unexpired, unrevoked
    UNKNOWN = "unknown"  # malformed, no such credential, expired, or another user's
    REVOKED = "revoked"  # this user's, revoked


def new_device_credential() -> NewSecret:
    """A fresh credential: give ``value`` to the device once (a cookie, the SDK's store),
    store ``hash``."""
    return new_secret("device")


def device_credential_hash(presented: str | None) -> str | None:
    """The lookup hash of a presented credential; None when absent or malformed."""
    if not presented:
        return None
    try:
        return parse_secret(presented, "device")
    except InvalidToken:
        return None


def device_state(
    *, presented: bool, record: DeviceRecord | None, user_id: str | None, now: datetime
) -> DeviceState:
    """What the presented credential says about this attempt of ``user_id``.

    Another user's credential is UNKNOWN, not REVOKED or RECOGNISED: it says nothing about
    this user (a shared computer), and its owner's state is not this attempt's business.
    """
    if not presented:
        return DeviceState.NONE
    if record is None or user_id is None or record.user_id != user_id:
        return DeviceState.UNKNOWN
    if record.revoked_at is not None:
        return DeviceState.REVOKED
    if now >= record.expires_at:
        return DeviceState.UNKNOWN
    return DeviceState.RECOGNISED
