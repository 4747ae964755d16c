"""Verifying an authentication assertion (WebAuthn Level 3 §7.2), as one pure function.

The caller reads the credential id with :func:`assertion_ids`, loads that credential
(``factors.credential_id`` is unique across users), calls :func:`verify_authentication`
and, in ONE transaction, deletes the challenge (single use) and stores ``sign_count``
as ``factors.replay_counter``. ``counter_regression`` and ``backup_eligibility_changed``
are raised only for a response signed by the credential's own key, so they are worth
auditing as what they say (a possible clone, a changed key type).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_authentication_credential_json,
    parse_authenticator_data,
    verify_signature,
)
from webauthn.helpers.exceptions import WebAuthnException

from bastion.errors import AssertionRefused, ConfigurationError
from bastion.factors.webauthn.ceremony import (
    check_client_data,
    check_flags,
    check_rp_id_hash,
    library_parse,
    refuse,
    top_level_id,
)
from bastion.factors.webauthn.model import (
    Refusal,
    RelyingParty,
    StoredCredential,
    b64url_decode,
)

__all__ = ["AssertionIds", "VerifiedAuthentication", "assertion_ids", "verify_authentication"]


@dataclass(frozen=True, slots=True)
class AssertionIds:
    """What a caller needs to find the credential record before verifying."""

    credential_id: bytes
    user_handle: bytes | None  # present for discoverable credentials (passkeys)


def assertion_ids(credential: object) -> AssertionIds:
    """Read ``rawId`` and ``response.userHandle`` (strict base64url) or raise
    ``AssertionRefused(malformed_credential)``. Nothing here is verified yet."""
    error = AssertionRefused
    malformed = "The credential could not be read."
    if not isinstance(credential, Mapping) or not isinstance(credential.get("response"), Mapping):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    raw_id, handle = credential.get("rawId"), credential["response"].get("userHandle")
    try:
        credential_id = b64url_decode(raw_id) if isinstance(raw_id, str) else b""
        user_handle = b64url_decode(handle) if isinstance(handle, str) and handle else None
    except ValueError:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    if not credential_id or (handle is not None and not isinstance(handle, str)):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    return AssertionIds(credential_id=credential_id, user_handle=user_handle)


@dataclass(frozen=True, slots=True)
class VerifiedAuthentication:
    """A verified assertion; store ``sign_count`` as the credential's new counter."""

    credential_id: bytes
    sign_count: int
    user_verified: bool  # UV: a PIN or biometric unlocked the key (a second category)
    backup_eligible: bool  # BE: equal to the value recorded at registration
    backup_state: bool  # BS: the credential is backed up now
    user_handle: bytes | None


def _verify_signature(stored: StoredCredential, signed: bytes, signature: bytes) -> None:
    try:
        decoded = decode_credential_public_key(stored.public_key)
        key = decoded_public_key_to_cryptography(decoded)
    except Exception:
        # The key was checked at registration: a stored key that no longer decodes is a
        # server-side fault (corrupt row), never the user's.
        raise ConfigurationError("A stored WebAuthn public key is malformed.") from None
    try:
        verify_signature(
            public_key=key, signature_alg=decoded.alg, signature=signature, data=signed
        )
    except (InvalidSignature, WebAuthnException, ValueError):
        refuse(
            AssertionRefused,
            Refusal.INVALID_SIGNATURE,
            "The response is not signed by this security key or passkey.",
        )


def verify_authentication(
    *,
    credential: Mapping[str, Any],
    stored: StoredCredential,
    user_handle: bytes,
    rp: RelyingParty,
    expected_challenge: bytes,
    allow_credentials: Collection[bytes] = (),
    require_user_verification: bool = False,
) -> VerifiedAuthentication:
    """Verify ``navigator.credentials.get()``'s result (AuthenticationResponseJSON).

    - ``stored``: the record whose id the response names (found via :func:`assertion_ids`).
    - ``user_handle``: the handle of the account that owns ``stored``.
    - ``allow_credentials``: the ids the options listed; empty for a discoverable-credential
      (passkey) ceremony, where the response must then carry the user handle.

    Raises ``AssertionRefused`` with a :class:`Refusal` code.
    """
    error = AssertionRefused
    # §7.2 steps 3-4: an AuthenticatorAssertionResponse, in its JSON form.
    parsed = library_parse(
        error,
        parse_authentication_credential_json,
        credential,
        binary=("clientDataJSON", "authenticatorData", "signature", "userHandle"),
    )
    top_level_id(error, parsed.id, parsed.raw_id)
    raw_id = bytes(parsed.raw_id)
    # §7.2 step 5: one of the credentials the options allowed.
    if allow_credentials and raw_id not in set(allow_credentials):
        refuse(error, Refusal.UNKNOWN_CREDENTIAL, "This credential was not asked for.")
    # §7.2 step 6: the credential record, and the account it belongs to.
    if not hmac.compare_digest(raw_id, stored.credential_id):
        refuse(error, Refusal.UNKNOWN_CREDENTIAL, "This is not the credential on record.")
    presented_handle = parsed.response.user_handle or None  # some clients send ""
    if presented_handle is None and not allow_credentials:
        refuse(error, Refusal.USER_HANDLE_MISMATCH, "A passkey sign-in must name its account.")
    if presented_handle is not None and not hmac.compare_digest(presented_handle, user_handle):
        refuse(error, Refusal.USER_HANDLE_MISMATCH, "The passkey belongs to another account.")
    # §7.2 steps 8-14: client data.
    client_data_json = bytes(parsed.response.client_data_json)
    check_client_data(
        error,
        client_data_json,
        ceremony="webauthn.get",
        rp=rp,
        expected_challenge=expected_challenge,
    )
    authenticator_data = bytes(parsed.response.authenticator_data)
    try:
        auth_data = parse_authenticator_data(authenticator_data)
    except Exception:  # py_webauthn raises several types on crafted bytes
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The authenticator data could not be read.")
    check_rp_id_hash(error, auth_data, rp.id)  # §7.2 step 15
    check_flags(error, auth_data, require_user_verification=require_user_verification)  # 16-18
    # §7.2 steps 20-21: the signature over authData || SHA-256(clientDataJSON). Checked
    # before step 19 so that only the key's holder can trigger the BE and counter refusals.
    client_data_hash = hashlib.sha256(client_data_json).digest()
    _verify_signature(
        stored, authenticator_data + client_data_hash, bytes(parsed.response.signature)
    )
    # §7.2 step 19: backup eligibility is a property of the credential, fixed at creation.
    if auth_data.flags.be != stored.backup_eligible:
        refuse(
            error,
            Refusal.BACKUP_ELIGIBILITY_CHANGED,
            "The security key reports a different kind of credential than it registered.",
        )
    # §7.2 step 22: a counter that does not grow (when either is non-zero) is a sign of
    # a cloned authenticator; Bastion refuses it (§6.1.1 leaves the choice to the RP).
    if (auth_data.sign_count or stored.sign_count) and auth_data.sign_count <= stored.sign_count:
        refuse(
            error,
            Refusal.COUNTER_REGRESSION,
            "The security key's signature counter went backwards: possible cloned authenticator.",
        )
    return VerifiedAuthentication(
        credential_id=raw_id,
        sign_count=auth_data.sign_count,
        user_verified=auth_data.flags.uv,
        backup_eligible=auth_data.flags.be,
        backup_state=auth_data.flags.bs,
        user_handle=presented_handle,
    )
