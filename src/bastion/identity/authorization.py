"""``authz.decide`` inside the transaction of a change.

Some rules depend on stored state that only the transaction making the change may read
consistently: the roles a user holds now, whether they are the tenant's last active
admin, which factors an account has. A service reads those attributes in its write
transaction, asks ``check`` (the same ``decide`` the request door asks, with the
tenant's rules as stored now), and acts only on ALLOW. A refusal is recorded in that
transaction (``authz.denied`` / ``step_up.challenged``, or the change's own failure
event for a refusal caused by the state, such as ``last_admin``) and raised once the
transaction has committed, with nothing else written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bastion.audit import decision_event, emit, record
from bastion.authz import Decision, Resource, decide, enforce
from bastion.domain import Principal
from bastion.errors import BastionError
from bastion.identity.rules import load_tenant_rules
from bastion.storage import CommitThenRaise

# Codes of refusals caused by the state of the installation, recorded as a failure of
# the change itself (``user.updated`` …) rather than as ``authz.denied``.
STATE_REFUSALS = frozenset({"last_admin"})


def check(
    conn: Connection,
    principal: Principal,
    action: str,
    resource: Resource,
    *,
    subject: str,
    now: datetime,
    failure: tuple[str, Mapping[str, Any]] | None = None,
) -> Decision:
    """The ALLOW decision, or the refusal recorded and raised after the commit.

    ``subject`` names the resource in the audit event (``user:usr_…``); ``failure`` is
    the change's own event and details, recorded for a state refusal.
    """
    rules = load_tenant_rules(conn, principal.tenant_id)
    decision = decide(
        principal, action, resource, policy=rules.policy, now=now, custom_roles=rules.roles
    )
    if decision.allowed:
        return decision
    if failure is not None and decision.code in STATE_REFUSALS:
        event_action, details = failure
        record(
            conn,
            event_action,
            outcome="failure",
            actor=principal.id,
            tenant_id=resource.tenant_id,
            resource=subject,
            reason=decision.code,
            details=details,
            now=now,
        )
    else:
        event = decision_event(principal, decision, resource=subject, tenant_id=resource.tenant_id)
        if event is not None:
            emit(conn, event, now=now)
    try:
        enforce(decision)
    except BastionError as refused:
        raise CommitThenRaise(refused) from None
    raise AssertionError("enforce returned a refusal")  # pragma: no cover
