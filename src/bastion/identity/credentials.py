"""What a user holds to sign in, as the directory ends it: sessions and factors.

``authn`` creates sessions and enrols factors; suspending, deleting or resetting a user
(``identity.lifecycle``, the CLI) ends them through these two functions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, update

from bastion.storage.schema import factors, recovery_codes, sessions


def revoke_user_sessions(conn: Connection, user_id: str, *, reason: str, now: datetime) -> None:
    """Every live session of the user ends (each token of them stops working)."""
    conn.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def reset_factors(conn: Connection, *, user_id: str) -> int:
    """Administrative reset: every factor and recovery code of the user is removed."""
    removed = conn.execute(delete(factors).where(factors.c.user_id == user_id)).rowcount
    conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    return int(removed)
