"""WebAuthn security keys and passkeys: options, and the two ceremonies as pure verifiers."""

from bastion.factors.webauthn.attestation import TRUSTABLE_FORMATS, assess_attestation
from bastion.factors.webauthn.authentication import (
    AssertionIds,
    VerifiedAuthentication,
    assertion_ids,
    verify_authentication,
)
from bastion.factors.webauthn.model import (
    CHALLENGE_BYTES,
    MAX_CREDENTIAL_ID_BYTES,
    MIN_CHALLENGE_BYTES,
    OFFERED_ALGORITHMS,
    Algorithm,
    AttestationPolicy,
    CredentialDescriptor,
    Refusal,
    RelyingParty,
    StoredCredential,
    b64url,
    b64url_decode,
    new_challenge,
    user_handle_for,
)
from bastion.factors.webauthn.options import (
    DEFAULT_TIMEOUT_MS,
    authentication_options,
    registration_options,
)
from bastion.factors.webauthn.registration import (
    SUPPORTED_FORMATS,
    VerifiedRegistration,
    verify_registration,
)
from bastion.factors.webauthn.settings import (
    attestation_policy_from_settings,
    relying_party_from_settings,
)

__all__ = [
    "CHALLENGE_BYTES",
    "DEFAULT_TIMEOUT_MS",
    "MAX_CREDENTIAL_ID_BYTES",
    "MIN_CHALLENGE_BYTES",
    "OFFERED_ALGORITHMS",
    "SUPPORTED_FORMATS",
    "TRUSTABLE_FORMATS",
    "Algorithm",
    "AssertionIds",
    "AttestationPolicy",
    "CredentialDescriptor",
    "Refusal",
    "RelyingParty",
    "StoredCredential",
    "VerifiedAuthentication",
    "VerifiedRegistration",
    "assertion_ids",
    "assess_attestation",
    "attestation_policy_from_settings",
    "authentication_options",
    "b64url",
    "b64url_decode",
    "new_challenge",
    "registration_options",
    "relying_party_from_settings",
    "user_handle_for",
    "verify_authentication",
    "verify_registration",
]
