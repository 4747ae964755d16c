"""An administrator unlocks a user (issue 11.9): every failed sign-in and second-factor
count of the account is forgotten, so that its owner can sign in again at once (the risk
engine's count of the user's failures too: ``user_failures``).

``POST /admin/users/{id}/unlock`` (``users.manage``: the policy's step-up, the grant
ceiling of every user administration), ``bastion user unlock NAME`` (the operator at the
data folder) and the console's Unlock button. Recorded as ``user.unlocked`` with the
counts cleared, and notified to the user (``authn.notices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from bastion.audit import record, safe_text
from bastion.authn.guessing import clear_guesses
from bastion.authn.login import AuthnDeps
from bastion.authn.notices import AccountNotice, deliver
from bastion.authz import Resource
from bastion.domain import Principal
from bastion.identity.authorization import check
from bastion.identity.grants import grants_of
from bastion.identity.lifecycle import roles_held
from bastion.identity.rules import custom_roles_of
from bastion.identity.users import User, live_user
from bastion.risk.store import forgive_failures

__all__ = ["Unlocked", "clear_counts", "notify_unlocked", "unlock_user"]


@dataclass(frozen=True)
class Unlocked:
    user: User
    sign_in_failures: int  # failed passwords forgotten (from every kind of address)
    second_factor_failures: int  # failed second-factor codes forgotten (the account's)


def clear_counts(
    conn: Connection, deps: AuthnDeps, user: User, *, actor: str, now: datetime
) -> Unlocked:
    """Forget the account's failure counts and record ``user.unlocked`` (the caller has
    decided that ``actor`` may)."""
    sign_in = 0
    for throttle, key in deps.throttles.account_keys(deps.sealer, user.username):
        sign_in += throttle.failures(conn, key, now=now)
        throttle.clear(conn, key)
    second = clear_guesses(conn, deps.sealer, user_id=user.id, now=now)
    forgive_failures(conn, user_id=user.id)  # nor does the risk engine count them any more
    record(
        conn,
        "user.unlocked",
        actor=actor,
        tenant_id=user.tenant_id,
        resource=f"user:{user.id}",
        details={
            "user_id": user.id,
            "username": safe_text(user.username),
            "sign_in_failures": sign_in,
            "second_factor_failures": second,
        },
        now=now,
    )
    return Unlocked(user, sign_in, second)


def unlock_user(deps: AuthnDeps, actor: Principal, user_id: str) -> Unlocked:
    """An administrator's unlock, decided with the user as they are now."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        user = live_user(conn, user_id)
        held = roles_held(grants_of(conn, "user", user.id), custom_roles_of(conn, user.tenant_id))
        resource = Resource(user.tenant_id, roles=held)
        check(conn, actor, "users.manage", resource, subject=f"user:{user.id}", now=now)
        done = clear_counts(conn, deps, user, actor=actor.id, now=now)
    notify_unlocked(deps, done, now=now)
    return done


def notify_unlocked(deps: AuthnDeps, done: Unlocked, *, now: datetime) -> None:
    notice = AccountNotice(
        event="user.unlocked", user_id=done.user.id, tenant_id=done.user.tenant_id, at=now
    )
    deliver(deps.notify, notice)
