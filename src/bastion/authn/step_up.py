"""``start_step_up``: a signed-in user asks for a higher ``acr`` or a fresh ``auth_time``
(RFC 9470); finished by ``authn.second_factor.verify_factor``.

Who may step up is ``authz.decide``'s (``me.step_up``): a user with a full session and an
enrolled factor able to reach the level asked for (``Resource.account.step_up_methods``).
"""

from __future__ import annotations

from bastion.audit import record
from bastion.authn.enrollment import login_methods
from bastion.authn.login import PASSWORD_FACTOR, AuthnDeps, ClientContext, mfa_required
from bastion.authn.results import MfaRequired
from bastion.authn.transactions import open_transaction
from bastion.authz import Account, Resource
from bastion.domain import Principal
from bastion.errors import ValidationError
from bastion.identity.authorization import check

STEP_UP_LEVELS = ("aal2", "aal3")
# The methods that can reach aal3 (a device-bound, phishing-resistant authenticator).
AAL3_METHODS = frozenset({"webauthn"})


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
        account = Account(has_active_factor=bool(methods), step_up_methods=tuple(able))
        resource = Resource(principal.tenant_id, account=account)
        check(conn, principal, "me.step_up", resource, subject=f"user:{principal.id}", now=now)
        methods = able
        prior = [dict(PASSWORD_FACTOR, prior=True)] if "pwd" in principal.amr else []
        tx = open_transaction(
            conn,
            user_id=principal.id,
            purpose="step_up",
            required_acr=required,
            verified=prior,
            context=context.as_dict(),
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
            },
            now=now,
        )
        return mfa_required(tx, methods, now=now)
