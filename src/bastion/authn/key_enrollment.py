"""Registering a security key or passkey (``/me/factors/webauthn…``), renaming a factor.

Registration is a change of how the account signs in (``me.factors.enroll``): the same
recent-proof rule as TOTP enrolment (``authn.self_service.may_change_sign_in``), asked
both when the options are made and when the answer comes. The challenge is bound to the
user and the session, single use, and expires after 5 minutes
(``authn.webauthn_challenges``). A credential id already registered, to this user or
another, is refused. The new factor records where it was added, so it never satisfies
the step-up of the session that added it. ``webauthn.registered`` / ``webauthn.refused``
are recorded in the transaction; the owner is notified once it has committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from bastion.authn.enrollment import FactorRecord, list_factors
from bastion.authn.login import AuthnDeps, ClientContext
from bastion.authn.notices import deliver
from bastion.authn.security_keys import (
    add_credential,
    credential_registered,
    credentials_of,
    webauthn_unavailable,
)
from bastion.authn.self_service import may_change_sign_in, notice, origin, record_change
from bastion.authn.webauthn_challenges import (
    issue_registration_challenge,
    take_registration_challenge,
)
from bastion.authz import Resource
from bastion.domain import Principal
from bastion.errors import AttestationRefused, NotFound
from bastion.factors.webauthn import (
    Refusal,
    registration_options,
    user_handle_for,
    verify_registration,
)
from bastion.identity.authorization import check
from bastion.storage import CommitThenRaise
from bastion.storage.schema import factors
from bastion.text import check_name

__all__ = ["finish_key_registration", "rename_factor", "start_key_registration"]


def start_key_registration(
    deps: AuthnDeps, principal: Principal, *, context: ClientContext
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptionsJSON`` for a new key of the caller."""
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.enroll", now=now)
        pending = issue_registration_challenge(
            conn,
            user_id=principal.id,
            session_id=principal.session_id,
            user_verification=False,
            now=now,
        )
        existing = [key.stored.descriptor() for key in credentials_of(conn, principal.id)]
        return registration_options(
            rp=rp,
            user_handle=user_handle_for(principal.id),
            user_name=principal.name,
            challenge=pending.challenge,
            attestation=deps.attestation,
            exclude=existing,
        )


def finish_key_registration(
    deps: AuthnDeps,
    principal: Principal,
    *,
    credential: Mapping[str, Any],
    name: str,
    context: ClientContext,
) -> FactorRecord:
    """Verify the browser's answer (WebAuthn §7.1) and store the new, active factor."""
    check_name(name, field="name")
    rp = deps.relying_party
    if rp is None:
        raise webauthn_unavailable()
    with deps.db.begin() as conn:
        now = deps.clock.now()
        may_change_sign_in(conn, principal, "me.factors.enroll", now=now)
        try:
            pending = take_registration_challenge(
                conn, user_id=principal.id, session_id=principal.session_id, now=now
            )
            verified = verify_registration(
                credential=credential,
                rp=rp,
                expected_challenge=pending.challenge,
                attestation=deps.attestation,
                now=now,
                require_user_verification=pending.user_verification,
            )
            # §7.1 step 26: a credential id registered already, to anyone, is refused.
            if credential_registered(conn, verified.credential_id):
                raise AttestationRefused(
                    Refusal.DUPLICATE_CREDENTIAL.value,
                    "This security key or passkey is already registered.",
                )
        except AttestationRefused as refused:
            record_change(
                conn,
                principal,
                "webauthn.refused",
                context,
                now=now,
                outcome="failure",
                reason=refused.reason,
                ceremony="registration",
            )
            raise CommitThenRaise(refused) from None
        factor = add_credential(
            conn,
            user_id=principal.id,
            name=name,
            verified=verified,
            now=now,
            origin=origin(principal, context),
        )
        record_change(
            conn,
            principal,
            "webauthn.registered",
            context,
            now=now,
            factor_id=factor.id,
            factor_type="webauthn",
            name=name,
            backup_eligible=verified.backup_eligible,
            user_verified=verified.user_verified,
            aaguid=str(verified.aaguid),
            attestation_format=verified.attestation_format,
            attestation_trusted=verified.attestation_trusted,
        )
    deliver(
        deps.notify,
        notice(
            principal, "webauthn.registered", context, now=now, factor_type="webauthn", name=name
        ),
    )
    return factor


def rename_factor(
    deps: AuthnDeps, principal: Principal, factor_id: str, *, name: str, context: ClientContext
) -> FactorRecord:
    """Rename one of the caller's factors: not a change of how it signs in, but audited
    (``factor.renamed``)."""
    check_name(name, field="name")
    with deps.db.begin() as conn:
        now = deps.clock.now()
        check(
            conn,
            principal,
            "me.factors.rename",
            Resource(principal.tenant_id),
            subject=f"user:{principal.id}",
            now=now,
        )
        row = conn.execute(
            select(factors.c.name).where(
                factors.c.id == factor_id, factors.c.user_id == principal.id
            )
        ).first()
        if row is None:
            raise NotFound("No such factor.", code="factor_not_found")
        conn.execute(update(factors).where(factors.c.id == factor_id).values(name=name))
        record_change(
            conn,
            principal,
            "factor.renamed",
            context,
            now=now,
            factor_id=factor_id,
            before=row.name,
            after=name,
        )
        return next(f for f in list_factors(conn, principal.id) if f.id == factor_id)
