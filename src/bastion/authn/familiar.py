"""Familiar addresses: where a user has signed in before (issue 11.9).

Failed passwords from addresses a user has never signed in from are counted apart from
those from familiar ones (``authn.login.LoginThrottles``), so that strangers guessing a
username cannot keep its owner out: NIST SP 800-63B-4 §3.2.2 names "accepting only
authentication requests that come from a white list of IP addresses from which the
subscriber has been successfully authenticated before" among the ways to keep rate
limiting from locking the owner out.

The history is the risk engine's (``bastion.risk`` store, docs/risk.md), not a second
one: every sign-in attempt is recorded once there, with its risk decision
(``risk.record_login_attempt``, ``authn.login``), and an address is familiar when the
user's recent successes (the last ``risk.store.HISTORY_LIMIT``, within
``FAMILIAR_DAYS``) include its network (the IPv4 address, or the IPv6 /64). The sign-in
reads that from the history the engine loaded (``authn.adaptive``); ``familiar_address``
is for the other callers (a password change).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from bastion.risk import DEFAULT_RISK_POLICY
from bastion.risk.store import load_login_history, network_of

__all__ = ["FAMILIAR_DAYS", "familiar_address"]

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
