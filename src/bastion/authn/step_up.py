"""``start_step_up``: a signed-in user asks for a higher ``acr`` or a fresh ``auth_time``
(RFC 9470); finished by ``authn.second_factor.verify_factor``.

Who may step up is ``authz.decide``'s (``me.step_up``): a user with a full session and an
enrolled factor able to reach the level asked for (``Resource.account.step_up_methods``).
The risk engine scores the attempt as it scores a sign-in (``authn.adaptive.assess``,
from the step-up's address, no remembered device): a *phishing-resistant* outcome offers
only phishing-resistant methods, and a user without one is refused; a *deny* is refused.
A refusal is ``401 step_up_refused`` (the same for both, no reasons: the client signs in
again), recorded as ``step_up.failure`` with the decision and as a risk event; an
accepted attempt keeps the decision on its transaction, recorded when it finishes.
"""

from __future__ import annotations

from bastion.audit import record
from bastion.authn.adaptive import assess
from bastion.authn.enrollment import login_methods
from bastion.authn.login import PASSWORD_FACTOR, AuthnDeps, ClientContext, mfa_required
from bastion.authn.results import MfaRequired
from bastion.authn.security_keys import unavailable_methods, webauthn_unavailable
from bastion.authn.transactions import open_transaction
from bastion.authz import Account, Resource
from bastion.domain import Principal
from bastion.errors import AuthenticationError, ValidationError
from bastion.identity.authorization import check
from bastion.identity.users import user_by_id
from bastion.risk import allowed_methods, record_login_attempt
from bastion.storage import CommitThenRaise

STEP_UP_LEVELS = ("aal2", "aal3")
# The methods that can reach aal3 (a device-bound, phishing-resistant authenticator).
AAL3_METHODS = frozenset({"webauthn"})


class StepUpRefused(AuthenticationError):
    """The risk engine refused a step-up (a deny, or a phishing-resistant factor asked of
    a user without one): one answer for both, no reasons (they go to the audit event)."""

    code = "step_up_refused"
    title = "Step-up refused"

    def __init__(self) -> None:
        super().__init__("The step-up was refused: sign in again.")


def start_step_up(
    deps: AuthnDeps, principal: Principal, *, acr_values: str | None, context: ClientContext
) -> MfaRequired:
    """Open a step-up transaction for a signed-in user (RFC 9470 flow, API.md)."""
    required = acr_values or "aal2"
    if required not in STEP_UP_LEVELS:
        raise ValidationError("acr_values must be 'aal2' or 'aal3'.", field="acr_values")
    with deps.db.begin() as conn:
        now = deps.clock.now()
        # Not with a factor or recovery codes this session added (issue 11.1).
        methods = (
            login_methods(conn, principal.id, excluding_session=principal.session_id)
            if principal.kind == "user"
            else []
        )
        able = [m for m in methods if required != "aal3" or m in AAL3_METHODS]
        # Not a method this server cannot run (WebAuthn on an IP-address public URL): named
        # in the answer; a step-up only such a method could do is a 409 saying why.
        unusable = unavailable_methods(deps.relying_party, able)
        if able and all(m in unusable for m in able):
            raise webauthn_unavailable()
        able = [m for m in able if m not in unusable]
        account = Account(has_active_factor=bool(methods), step_up_methods=tuple(able))
        resource = Resource(principal.tenant_id, account=account)
        check(conn, principal, "me.step_up", resource, subject=f"user:{principal.id}", now=now)
        user = user_by_id(conn, principal.id)
        assessed = assess(
            conn, deps.risk, deps.sealer, username=user.username, user=user, ip=context.ip,
            device_credential=None, now=now,
        )  # fmt: skip
        requirement = assessed.risk.requirement
        methods = list(allowed_methods(requirement, able))
        if not methods:  # a deny, or a phishing-resistant factor the user does not have
            record_login_attempt(
                conn, assessed.risk, outcome="denied", tenant_id=user.tenant_id, now=now
            )
            record(
                conn,
                "step_up.failure",
                outcome="denied",
                actor=principal.id,
                tenant_id=principal.tenant_id,
                reason="risk_denied" if requirement.deny else "risk_no_factor",
                details={
                    "session_id": principal.session_id,
                    "required_acr": required,
                    **assessed.details,
                },
                now=now,
            )
            raise CommitThenRaise(StepUpRefused())
        prior = [dict(PASSWORD_FACTOR, prior=True)] if "pwd" in principal.amr else []
        tx = open_transaction(
            conn,
            user_id=principal.id,
            purpose="step_up",
            required_acr=required,
            verified=prior,
            context={**context.as_dict(), "risk": assessed.context(methods)},
            now=now,
            ttl=deps.transaction_ttl,
            session_id=principal.session_id,
        )
        record(
            conn,
            "step_up.started",
            actor=principal.id,
            tenant_id=principal.tenant_id,
            details={
                "session_id": principal.session_id,
                "required_acr": required,
                "methods": methods,
                **assessed.details,
            },
            now=now,
        )
        return mfa_required(tx, methods, now=now, unavailable=unusable)
