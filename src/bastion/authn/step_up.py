"""``start_step_up``: a signed-in user asks for a higher ``acr`` or a fresh ``auth_time``
(RFC 9470); finished by ``authn.second_factor.verify_factor``."""

from __future__ import annotations

from bastion.audit import record
from bastion.authn.enrollment import login_methods
from bastion.authn.login import PASSWORD_FACTOR, ClientContext, LoginDeps, mfa_required
from bastion.authn.results import MfaRequired
from bastion.authn.transactions import open_transaction
from bastion.domain import Principal
from bastion.errors import AuthorizationError, ValidationError

STEP_UP_LEVELS = ("aal2", "aal3")


def start_step_up(
    deps: LoginDeps, principal: Principal, *, acr_values: str | None, context: ClientContext
) -> MfaRequired:
    """Open a step-up transaction for a signed-in user (RFC 9470 flow, API.md)."""
    if principal.kind != "user" or principal.restricted:
        raise AuthorizationError(
            "Only a signed-in user with an active factor can step up.", code="step_up_unavailable"
        )
    required = acr_values or "aal2"
    if required not in STEP_UP_LEVELS:
        raise ValidationError("acr_values must be 'aal2' or 'aal3'.", field="acr_values")
    with deps.db.begin() as conn:
        now = deps.clock.now()
        methods = login_methods(conn, principal.id)
        if required == "aal3":
            methods = [m for m in methods if m == "webauthn"]
        if not methods:
            raise AuthorizationError(
                f"No authenticator that can reach {required} is enrolled; "
                "enrol one under /me/factors.",
                code="no_suitable_factor",
            )
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
