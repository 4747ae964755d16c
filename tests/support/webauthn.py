"""Shared set-up for WebAuthn tests: one relying party, and ceremonies run end to end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bastion.factors.webauthn import (
    OFFERED_ALGORITHMS,
    Algorithm,
    AttestationPolicy,
    RelyingParty,
    StoredCredential,
    VerifiedAuthentication,
    VerifiedRegistration,
    authentication_options,
    new_challenge,
    registration_options,
    user_handle_for,
    verify_authentication,
    verify_registration,
)
from tests.support.authenticator import SoftAuthenticator

ORIGIN = "http://localhost:6333"
PROXY_ORIGIN = "https://console.localhost"
RP = RelyingParty(id="localhost", name="Bastion", origins=(ORIGIN, PROXY_ORIGIN))
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NO_ATTESTATION = AttestationPolicy()
USER_ID = "usr_00112233445566778899aabbccddeeff"
HANDLE = user_handle_for(USER_ID)


def creation_options(
    policy: AttestationPolicy = NO_ATTESTATION, **kwargs: Any
) -> tuple[dict[str, Any], bytes]:
    challenge = new_challenge()
    options = registration_options(
        rp=RP,
        user_handle=HANDLE,
        user_name="alice",
        challenge=challenge,
        attestation=policy,
        **kwargs,
    )
    return options, challenge


def register(
    authenticator: SoftAuthenticator,
    *,
    policy: AttestationPolicy = NO_ATTESTATION,
    require_user_verification: bool = False,
    algorithms: Sequence[Algorithm] = OFFERED_ALGORITHMS,
    expected_challenge: bytes | None = None,
    now: datetime = NOW,
    origin: str = ORIGIN,
    **overrides: Any,
) -> VerifiedRegistration:
    """Options → the authenticator → the verifier; ``overrides`` go to the authenticator."""
    options, challenge = creation_options(policy)
    response = authenticator.create(options, origin=origin, **overrides)
    return verify_registration(
        credential=response,
        rp=RP,
        expected_challenge=expected_challenge or challenge,
        attestation=policy,
        now=now,
        require_user_verification=require_user_verification,
        algorithms=algorithms,
    )


def request_options(
    stored: StoredCredential | None, **kwargs: Any
) -> tuple[dict[str, Any], bytes, tuple[bytes, ...]]:
    """Second-factor options for ``stored``, or passkey options (empty allow list) for None."""
    challenge = new_challenge()
    allow = (stored.descriptor(),) if stored is not None else ()
    options = authentication_options(rp=RP, challenge=challenge, allow=allow, **kwargs)
    return options, challenge, tuple(d.id for d in allow)


def sign_in(
    authenticator: SoftAuthenticator,
    stored: StoredCredential,
    *,
    passkey: bool = False,
    require_user_verification: bool = False,
    expected_challenge: bytes | None = None,
    origin: str = ORIGIN,
    **overrides: Any,
) -> VerifiedAuthentication:
    options, challenge, allow = request_options(None if passkey else stored)
    response = authenticator.get(options, origin=origin, **overrides)
    return verify_authentication(
        credential=response,
        stored=stored,
        user_handle=HANDLE,
        rp=RP,
        expected_challenge=expected_challenge or challenge,
        allow_credentials=allow,
        require_user_verification=require_user_verification,
    )


def verify_assertion(
    response: dict[str, Any],
    stored: StoredCredential,
    challenge: bytes,
    *,
    allow: Sequence[bytes] | None = None,
) -> VerifiedAuthentication:
    """Verify ``response`` against ``stored`` (allow list: ``stored`` unless given)."""
    return verify_authentication(
        credential=response,
        stored=stored,
        user_handle=HANDLE,
        rp=RP,
        expected_challenge=challenge,
        allow_credentials=[stored.credential_id] if allow is None else allow,
    )
