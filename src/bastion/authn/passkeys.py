"""Passwordless sign-in with a passkey (a discoverable WebAuthn credential).

    passkey_options ─▶ {transaction_id: "ptx_…", options} (no username; empty allow list)
    passkey_sign_in ─▶ tokens

The sign-in starts with no username: the browser offers the passkeys it holds for the RP
ID (also in the username field's autofill, ``mediation: "conditional"``), and the answer's
user handle names the account. User verification is required, so the passkey alone
proves two categories (``aal2``; ``aal3`` when it is device-bound, BE = 0).

Throttled and audited like a password login (``authn.login``): the per-address count is
checked first (also for new options) and counted on every failure. The account's count
is not, unless the key itself verified (a suspended user): a credential id is no
secret, and a stranger must not throttle its owner's password with it. The risk engine
counts every refusal as a failed sign-in of the address (its reputation) and, when the
answer named a registered credential, of that credential's user (``user_failures``, the
weight a wrong password for that username has; ``authn.adaptive.record_refused_passkey``);
one the engine scored and denied is recorded with its decision. Every refusal
(unknown or expired transaction, unknown credential, a signature, origin, flag or
counter refused, a suspended user) answers the same ``401 invalid_credentials``; the
reason is only in the audit log (``login.failure``, and ``webauthn.refused`` once a
stored credential is involved).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.audit import record
from bastion.authn.adaptive import Assessed, assess, record_refused_passkey
from bastion.authn.assurance import compute_assurance
from bastion.authn.familiar import familiar_address
from bastion.authn.guessing import clear_guesses
from bastion.authn.login import AuthnDeps, ClientContext, account_text, finish
from bastion.authn.results import LoginResult
from bastion.authn.security_keys import credential_owner, verify_key, webauthn_unavailable
from bastion.authn.webauthn_challenges import issue_passkey_challenge, take_passkey_challenge
from bastion.domain import acr_satisfies
from bastion.errors import AssertionRefused, InvalidCredentials
from bastion.factors.webauthn import authentication_options
from bastion.identity.rules import load_policy
from bastion.identity.users import User, find_user_by_id
from bastion.risk import record_login_attempt
from bastion.storage import CommitThenRaise

__all__ = ["PasskeyStart", "passkey_options", "passkey_sign_in"]


@dataclass(frozen=True)
class PasskeyStart:
    transaction_id: str
    options: dict[str, Any]


def passkey_options(deps: AuthnDeps, *, context: ClientContext) -> PasskeyStart:
    """A passkey sign-in transaction and its request options (no allow list, UV required);
    refused (429) while the address is throttled for failed sign-ins."""
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    throttles = deps.throttles
    address_key = throttles.by_address.key(deps.sealer, context.ip or "-")
    with deps.db.begin() as conn:
        now = deps.clock.now()
        throttles.by_address.check(conn, address_key, now=now)
        pending = issue_passkey_challenge(conn, now=now)
    options = authentication_options(
        rp=rp, challenge=pending.challenge, user_verification="required"
    )
    return PasskeyStart(pending.id, options)


def passkey_sign_in(
    deps: AuthnDeps,
    *,
    transaction_id: str,
    credential: Mapping[str, Any],
    context: ClientContext,
) -> LoginResult:
    """Verify the passkey's answer; tokens, or the one generic failure."""
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    throttles = deps.throttles
    address_key = throttles.by_address.key(deps.sealer, context.ip or "-")
    with deps.db.read() as conn:
        throttles.by_address.check(conn, address_key, now=deps.clock.now())
    with deps.db.begin() as conn:
        now = deps.clock.now()
        throttles.by_address.check(conn, address_key, now=now)
        user: User | None = None
        assessed: Assessed | None = None
        try:
            pending = take_passkey_challenge(conn, transaction_id, now=now)
            used = verify_key(
                conn,
                rp,
                credential=credential,
                pending=pending,
                user_id=None,
                ceremony="passkey",
                now=now,
            )
            user = find_user_by_id(conn, used.key.user_id)
            if user is None or not user.active:
                reason = f"user_{user.status}" if user is not None else "unknown_user"
                raise AssertionRefused(reason, "The account cannot sign in.")
            assurance = compute_assurance([used.factor])
            policy = load_policy(conn, user.tenant_id)
            if not acr_satisfies(assurance.acr, "aal2" if policy.mfa_required else "aal1"):
                raise AssertionRefused("insufficient_assurance", "The passkey is not enough.")
            # The risk engine scores the sign-in too (issue 15). A passkey with user
            # verification is already the multi-factor, phishing-resistant factor any raised
            # requirement asks for; only a denial refuses it.
            assessed = assess(
                conn, deps.risk, deps.sealer, username=user.username, user=user,
                ip=context.ip, device_credential=None, now=now,
            )  # fmt: skip
            if assessed.risk.requirement.deny:
                raise AssertionRefused("risk_denied", "The risk engine refused the sign-in.")
        except AssertionRefused as refused:
            throttles.by_address.fail(conn, address_key, now=now)
            if user is not None:
                familiar = familiar_address(conn, user_id=user.id, ip=context.ip, now=now)
                account = throttles.account(familiar=familiar)
                account.fail(conn, account.key(deps.sealer, account_text(user.username)), now=now)
            denied = refused.reason == "risk_denied"
            if assessed is not None and user is not None:
                record_login_attempt(
                    conn,
                    assessed.risk,
                    outcome="denied" if denied else "failure",
                    tenant_id=user.tenant_id,
                    now=now,
                )
            else:
                owner = user
                if owner is None and refused.reason != "challenge_expired":
                    # An unknown or expired transaction: the answer was never checked,
                    # so the account it names is not blamed (only the address is).
                    owner_id = credential_owner(conn, credential)
                    owner = find_user_by_id(conn, owner_id) if owner_id is not None else None
                record_refused_passkey(conn, deps.risk, deps.sealer, owner, ip=context.ip, now=now)
            record(
                conn,
                "login.failure",
                outcome="denied" if denied else "failure",
                actor=user.id if user else None,
                tenant_id=user.tenant_id if user else None,
                reason=refused.reason,
                details={
                    "ip": context.ip,
                    "username": user.username if user else None,
                    "method": "passkey",
                    **(assessed.details if assessed is not None else {}),
                },
                now=now,
            )
            raise CommitThenRaise(InvalidCredentials()) from None
        clear_guesses(conn, deps.sealer, user_id=user.id, now=now)
        return finish(
            deps,
            conn,
            user,
            acr=assurance.acr,
            amr=list(assurance.amr),
            context=context,
            reason="passkey",
            now=now,
            risk=assessed.context() if assessed is not None else None,
        )
