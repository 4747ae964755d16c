"""A signed-in user changes their own password (``POST /me/password``, issue 11.1).

The change is a ``changes_sign_in`` permission (``me.password.change``): a recent proof,
with a factor the account already had (aal2 once it has one). The current password is
asked too, and a wrong one is counted like a failed sign-in (``authn.login``'s account
throttle, by the address it comes from), so a stolen session cannot guess the password
here faster than at the login. The new password follows the tenant's password policy
(NIST SP 800-63B-4 §3.1.1.2). Every other session of the user ends with the change; the
one that made it stays. Every remembered device of the user is revoked too (it was earned
with the old password: a thief who had both must not keep a possession factor). Argon2
runs outside any transaction, as at the login.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from bastion.authn.familiar import familiar_address
from bastion.authn.login import AuthnDeps, ClientContext, account_text
from bastion.authn.notices import deliver
from bastion.authn.self_service import may_change_sign_in, notice, record_change
from bastion.authn.sessions import revoke_other_sessions
from bastion.domain import Principal
from bastion.errors import AuthorizationError, InvalidCredentials
from bastion.factors.password import check_new_password, hash_password, verify_password
from bastion.identity.credentials import revoke_devices
from bastion.identity.rules import load_policy
from bastion.identity.users import set_password_hash, user_by_id
from bastion.storage import CommitThenRaise

__all__ = ["InvalidCurrentPassword", "PasswordChange", "change_password"]


class InvalidCurrentPassword(AuthorizationError):
    code = "invalid_current_password"
    title = "The current password is not right"

    def __init__(self) -> None:
        super().__init__("The current password is not right.")


@dataclass(frozen=True)
class PasswordChange:
    sessions_revoked: int  # the user's other sessions that ended
    devices_revoked: int  # the remembered devices that were revoked


def change_password(
    deps: AuthnDeps,
    principal: Principal,
    *,
    current: str,
    new: str,
    context: ClientContext,
) -> PasswordChange:
    """Set a new password; the other sessions and every remembered device end."""
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.password.change", now=now)
        user = user_by_id(conn, principal.id)
        policy = load_policy(conn, user.tenant_id)
        familiar = familiar_address(conn, user_id=user.id, ip=context.ip, now=now)
        throttle = deps.throttles.account(familiar=familiar)
        key = throttle.key(deps.sealer, account_text(user.username))
        throttle.check(conn, key, now=now)
    checked = check_new_password(
        new, min_length=policy.password_min_length, context_words=[user.username, "bastion"]
    )
    right = user.password_hash is not None
    try:
        if user.password_hash is not None:
            verify_password(stored_hash=user.password_hash, presented=current, hasher=deps.hasher)
    except InvalidCredentials:
        right = False
    new_hash = hash_password(checked, hasher=deps.hasher) if right else None
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.password.change", now=now)
        throttle.check(conn, key, now=now)
        stored = user_by_id(conn, principal.id).password_hash
        unchanged = (
            stored is not None
            and user.password_hash is not None
            and hmac.compare_digest(stored.encode(), user.password_hash.encode())
        )
        if new_hash is None or not unchanged:
            throttle.fail(conn, key, now=now)
            record_change(
                conn,
                principal,
                "user.password_changed",
                context,
                now=now,
                outcome="failure",
                reason="invalid_current_password",
                user_id=user.id,
            )
            raise CommitThenRaise(InvalidCurrentPassword())
        set_password_hash(conn, user.id, new_hash, now=now)
        throttle.clear(conn, key)
        ended = revoke_other_sessions(
            conn, user.id, keep=principal.session_id, reason="password_changed", now=now
        )
        devices = revoke_devices(
            conn, actor_id=principal.id, user_id=user.id, tenant_id=user.tenant_id,
            reason="password_changed", now=now,
        )  # fmt: skip
        record_change(
            conn,
            principal,
            "user.password_changed",
            context,
            now=now,
            user_id=user.id,
            sessions_revoked=ended,
            devices_revoked=devices,
        )
    deliver(deps.notify, notice(principal, "user.password_changed", context, now=now))
    return PasswordChange(sessions_revoked=ended, devices_revoked=devices)
