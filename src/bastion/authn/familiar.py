"""Familiar addresses: where a user has signed in before (issue 11.9).

Failed passwords from addresses a user has never signed in from are counted apart from
those from familiar ones (``authn.login.LoginThrottles``), so that strangers guessing a
username cannot keep its owner out: NIST SP 800-63B-4 §3.2.2 names "accepting only
authentication requests that come from a white list of IP addresses from which the
subscriber has been successfully authenticated before" among the ways to keep rate
limiting from locking the owner out.

The history is the risk engine's (``bastion.risk`` store, docs/risk.md), not a second
one: a full sign-in (every factor the policy asks) records a ``login`` success there,
and an address is familiar when the user's recent successes (the last
``risk.store.HISTORY_LIMIT``, within ``FAMILIAR_DAYS``) include its network (the IPv4
address, or the IPv6 /64). When the risk engine is wired into sign-in (issue 15) its
own recording of the attempt replaces ``remember_sign_in``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from bastion.risk import DEFAULT_RISK_POLICY
from bastion.risk.geo import UNKNOWN
from bastion.risk.store import load_login_history, network_of, record_login

__all__ = ["FAMILIAR_DAYS", "familiar_address", "remember_sign_in"]

FAMILIAR_DAYS = 90


def familiar_address(
    conn: Connection, *, user_id: str | None, ip: str | None, now: datetime
) -> bool:
    """Whether ``user_id`` signed in from ``ip``'s network in the last ``FAMILIAR_DAYS``.

    The history is read for an unknown username too (``user_id`` None), so that a known
    and an unknown username cost the same.
    """
    network = network_of(ip)
    if network is None:
        return False
    history = load_login_history(
        conn, user_id=user_id, ip=ip, device_hash=None, policy=DEFAULT_RISK_POLICY, now=now
    )
    since = now - timedelta(days=FAMILIAR_DAYS)
    return user_id is not None and any(
        past.network == network and past.at >= since for past in history.successes
    )


def remember_sign_in(
    conn: Connection, *, user_id: str, tenant_id: str, ip: str | None, now: datetime
) -> None:
    """Record a full sign-in from ``ip`` (in the sign-in's own transaction)."""
    record_login(
        conn,
        at=now,
        outcome="success",
        tenant_id=tenant_id,
        user_id=user_id,
        username_key=None,
        ip=ip,
        location=UNKNOWN,
        decision=None,
        policy=DEFAULT_RISK_POLICY,
    )
