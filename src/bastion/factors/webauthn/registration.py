"""Registering a new credential (WebAuthn Level 3 §7.1), as one pure function.

The caller (``POST /me/factors/webauthn``) loads the challenge it issued, calls
:func:`verify_registration`, and in ONE transaction deletes the challenge (single use) and
inserts the credential. The database's unique ``factors.credential_id`` is step 26: a
credential id already registered, to this user or another, is refused there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import webauthn
from webauthn.helpers import (
    decode_credential_public_key,
    parse_attestation_object,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier

from bastion.errors import AttestationRefused
from bastion.factors.webauthn.attestation import assess_attestation
from bastion.factors.webauthn.ceremony import (
    check_client_data,
    check_flags,
    check_rp_id_hash,
    library_parse,
    refuse,
    top_level_id,
)
from bastion.factors.webauthn.model import (
    MAX_CREDENTIAL_ID_BYTES,
    OFFERED_ALGORITHMS,
    Algorithm,
    AttestationPolicy,
    Refusal,
    RelyingParty,
    StoredCredential,
    b64url,
)

__all__ = ["SUPPORTED_FORMATS", "VerifiedRegistration", "verify_registration"]

_KNOWN_TRANSPORTS = frozenset({"ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb"})

# §7.1 step 21: the attestation statement formats Bastion verifies (with py_webauthn).
# Not android-safetynet: deprecated by Google, and its check reads the wall clock.
SUPPORTED_FORMATS = frozenset({"none", "packed", "fido-u2f", "tpm", "android-key", "apple"})


@dataclass(frozen=True, slots=True)
class VerifiedRegistration:
    """A credential record to store (§7.1 step 27)."""

    credential_id: bytes
    public_key: bytes  # COSE_Key bytes, stored base64url in public_data["public_key"]
    algorithm: Algorithm
    sign_count: int
    aaguid: UUID  # all zeros when the authenticator (or browser) does not say
    backup_eligible: bool  # BE: fixed for the credential's life (a synced passkey when set)
    backup_state: bool  # BS: backed up now
    user_verified: bool  # UV at registration (the record's uvInitialized)
    transports: tuple[str, ...]
    attestation_format: str
    attestation_trusted: bool  # True only under `direct`, after a chain to a root
    discoverable: bool | None  # credProps.rk when the browser reports it

    def public_data(self) -> dict[str, Any]:
        """``factors.public_data``: the public key and descriptions, nothing secret."""
        return {
            "public_key": b64url(self.public_key),
            "algorithm": int(self.algorithm),
            "backup_state": self.backup_state,
            "user_verified": self.user_verified,
            "transports": list(self.transports),
            "attestation_format": self.attestation_format,
            "attestation_trusted": self.attestation_trusted,
            "discoverable": self.discoverable,
        }

    def factor_columns(self) -> dict[str, Any]:
        """The ``factors`` columns of the new credential (add id, user, name, status, times)."""
        return {
            "credential_id": b64url(self.credential_id),
            "public_data": self.public_data(),
            "replay_counter": self.sign_count,
            "backup_eligible": self.backup_eligible,
            "aaguid": str(self.aaguid),
        }

    def stored(self) -> StoredCredential:
        """The record as :meth:`StoredCredential.from_row` will read it back."""
        return StoredCredential.from_row(self.factor_columns())


def _discoverable(credential: Mapping[str, Any]) -> bool | None:
    results = credential.get("clientExtensionResults")
    props = results.get("credProps") if isinstance(results, Mapping) else None
    rk = props.get("rk") if isinstance(props, Mapping) else None
    return rk if isinstance(rk, bool) else None


def verify_registration(
    *,
    credential: Mapping[str, Any],
    rp: RelyingParty,
    expected_challenge: bytes,
    attestation: AttestationPolicy,
    now: datetime,
    require_user_verification: bool = False,
    algorithms: Sequence[Algorithm] = OFFERED_ALGORITHMS,
) -> VerifiedRegistration:
    """Verify ``navigator.credentials.create()``'s result (RegistrationResponseJSON).

    ``algorithms`` are those the options offered; ``now`` is only used to check the
    validity of attestation certificates under ``direct``. Raises ``AttestationRefused``
    with a :class:`Refusal` code; returns what to store.
    """
    error = AttestationRefused
    # §7.1 steps 3-4: an AuthenticatorAttestationResponse, in its JSON form.
    parsed = library_parse(
        error,
        parse_registration_credential_json,
        credential,
        binary=("clientDataJSON", "attestationObject"),
    )
    top_level_id(error, parsed.id, parsed.raw_id)
    # §7.1 steps 5-11: client data.
    check_client_data(
        error,
        parsed.response.client_data_json,
        ceremony="webauthn.create",
        rp=rp,
        expected_challenge=expected_challenge,
    )
    # §7.1 step 13: CBOR decoding of the attestation object.
    try:
        attestation_object = parse_attestation_object(parsed.response.attestation_object)
    except Exception:  # py_webauthn raises several types on crafted CBOR
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The attestation object could not be read.")
    auth_data = attestation_object.auth_data
    check_rp_id_hash(error, auth_data, rp.id)  # §7.1 step 14
    check_flags(error, auth_data, require_user_verification=require_user_verification)  # 15-17
    fmt = getattr(attestation_object.fmt, "value", attestation_object.fmt)
    attested = auth_data.attested_credential_data
    if attested is None or not isinstance(fmt, str):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The authenticator sent no new credential.")
    if attested.credential_id != parsed.raw_id:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The credential id does not match rawId.")
    # §7.1 step 20: the key's algorithm is one the options offered.
    try:
        alg = int(decode_credential_public_key(attested.credential_public_key).alg)
    except Exception:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The credential public key could not be read.")
    if alg not in {int(a) for a in algorithms}:
        refuse(error, Refusal.ALGORITHM_NOT_ALLOWED, "The key uses an algorithm not offered.")
    # §7.1 step 21: a format Bastion supports.
    if fmt not in SUPPORTED_FORMATS:
        refuse(error, Refusal.ATTESTATION_INVALID, "The attestation format is not supported.")
    # §7.1 step 22: the statement verifies. py_webauthn repeats steps 5-20 (harmless) and
    # verifies it; given no roots it judges no trust (steps 23-24 are Bastion's, below).
    try:
        webauthn.verify_registration_response(
            credential=parsed,
            expected_challenge=expected_challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=require_user_verification,
            supported_pub_key_algs=[COSEAlgorithmIdentifier(int(a)) for a in algorithms],
        )
    except Exception:  # WebAuthnException, and what format code raises on crafted input
        refuse(error, Refusal.ATTESTATION_INVALID, "The attestation statement does not verify.")
    aaguid = UUID(bytes=bytes(attested.aaguid))
    # §7.1 steps 23-24: trust in the attestation, as the policy wants it.
    statement = attestation_object.att_stmt
    trusted = assess_attestation(
        policy=attestation,
        fmt=fmt,
        x5c=(statement.x5c if statement else None) or (),
        aaguid=aaguid,
        now=now,
    )
    # §7.1 step 25: credential ids longer than 1023 bytes are refused.
    if len(attested.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The credential id is too long.")
    transports = parsed.response.transports or []
    return VerifiedRegistration(
        credential_id=bytes(attested.credential_id),
        public_key=bytes(attested.credential_public_key),
        algorithm=Algorithm(alg),
        sign_count=auth_data.sign_count,
        aaguid=aaguid,
        backup_eligible=auth_data.flags.be,
        backup_state=auth_data.flags.bs,
        user_verified=auth_data.flags.uv,
        transports=tuple(sorted({t.value for t in transports} & _KNOWN_TRANSPORTS)),
        attestation_format=fmt,
        attestation_trusted=trusted,
        discoverable=_discoverable(credential),
    )
