"""Options for ``navigator.credentials.create()`` / ``get()``, as the JSON a browser takes.

The caller makes the challenge (:func:`~bastion.factors.webauthn.model.new_challenge`),
stores it bound to the user or login transaction with a 5-minute expiry, and sends these
dicts as ``PublicKeyCredentialCreationOptionsJSON`` / ``…RequestOptionsJSON`` (WebAuthn
§5.1.8/§5.1.9: ``PublicKeyCredential.parseCreationOptionsFromJSON()`` reads them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from webauthn import generate_authentication_options, generate_registration_options
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from bastion.factors.webauthn.model import (
    MIN_CHALLENGE_BYTES,
    OFFERED_ALGORITHMS,
    Algorithm,
    AttestationPolicy,
    CredentialDescriptor,
    RelyingParty,
)

__all__ = ["DEFAULT_TIMEOUT_MS", "authentication_options", "registration_options"]

DEFAULT_TIMEOUT_MS = 300_000  # a hint to the browser; the stored challenge expires in 5 min

UserVerification = Literal["required", "preferred", "discouraged"]
ResidentKey = Literal["required", "preferred", "discouraged"]


def _check_challenge(challenge: bytes) -> None:
    if len(challenge) < MIN_CHALLENGE_BYTES:
        raise ValueError(f"a WebAuthn challenge is at least {MIN_CHALLENGE_BYTES} random bytes")


def _descriptors(items: Sequence[CredentialDescriptor]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=item.id,
            transports=[AuthenticatorTransport(t) for t in item.transports if t in known] or None,
        )
        for item in items
    ]


def registration_options(
    *,
    rp: RelyingParty,
    user_handle: bytes,
    user_name: str,
    challenge: bytes,
    attestation: AttestationPolicy,
    exclude: Sequence[CredentialDescriptor] = (),
    resident_key: ResidentKey = "preferred",
    user_verification: UserVerification = "preferred",
    algorithms: Sequence[Algorithm] = OFFERED_ALGORITHMS,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptionsJSON`` for a new key or passkey.

    - ``exclude``: the user's existing credentials, so one authenticator is not added twice.
    - ``resident_key``: ``preferred`` makes a passkey where the authenticator can (so it can
      also sign in without a username), ``required`` insists; ``credProps`` asks the browser
      to report which it made.
    - ``user_verification``: ``preferred`` by default; ``required`` when the credential must
      be usable alone (passwordless, or ``aal3`` without a password).
    """
    _check_challenge(challenge)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=user_name,
        challenge=challenge,
        timeout=timeout_ms,
        attestation=AttestationConveyancePreference(attestation.conveyance),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement(resident_key),
            user_verification=UserVerificationRequirement(user_verification),
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=[COSEAlgorithmIdentifier(int(a)) for a in algorithms],
    )
    result = options_to_json_dict(options)
    for param in result["pubKeyCredParams"]:
        param["alg"] = int(param["alg"])  # plain JSON numbers, not the library's enum
    result["extensions"] = {"credProps": True}
    return result


def authentication_options(
    *,
    rp: RelyingParty,
    challenge: bytes,
    allow: Sequence[CredentialDescriptor] = (),
    user_verification: UserVerification = "preferred",
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptionsJSON``.

    ``allow`` lists the user's credentials for a second-factor or step-up ceremony; leave it
    empty for a passkey sign-in that starts without a username (the browser then offers the
    discoverable credentials it holds for this RP ID; with ``mediation: "conditional"`` in
    the ``get()`` call it offers them in the username field's autofill).
    """
    _check_challenge(challenge)
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=timeout_ms,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement(user_verification),
    )
    return options_to_json_dict(options)
