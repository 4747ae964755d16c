"""Notices to a user about a change of how their account signs in (issue 11.1).

A factor enrolled, activated or removed, new recovery codes, a new password, an unlock:
each is recorded in the audit log in the transaction of the change, and *notified* once
that transaction has committed, through the ``Notifier`` the services are given
(``AuthnDeps.notify``). The default writes one line to the ``bastion.notify`` logger; mail
or push delivery plugs in here (a notifier that queues the message), never inside the
transaction, and a notifier that fails never fails the change (it is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from bastion.text import printable

__all__ = ["AccountNotice", "Notifier", "deliver", "log_notice"]

log = logging.getLogger("bastion.notify")


@dataclass(frozen=True)
class AccountNotice:
    """One change to tell the account's owner about (never a secret)."""

    event: str  # its audit action: factor.enrolled, user.password_changed…
    user_id: str
    tenant_id: str
    at: datetime
    session_id: str | None = None  # the session that made the change
    ip: str | None = None
    user_agent: str | None = None
    details: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


Notifier = Callable[[AccountNotice], None]


def log_notice(notice: AccountNotice) -> None:
    """The default notifier: one log line (``bastion.notify``), every field escaped."""
    details = sorted(notice.details.items())
    described = " ".join(f"{key}={printable(value)}" for key, value in details)
    log.info(
        "account notice %s for user %s at %s from %s (%s), session %s%s",
        notice.event,
        notice.user_id,
        notice.at.isoformat(),
        printable(notice.ip or "-"),
        printable(notice.user_agent or "-"),
        notice.session_id or "-",
        f": {described}" if described else "",
    )


def deliver(notify: Notifier, notice: AccountNotice) -> None:
    """Hand ``notice`` to ``notify`` after the change committed; a failure is logged."""
    try:
        notify(notice)
    except Exception:
        log.exception("could not deliver the account notice %s", notice.event)
