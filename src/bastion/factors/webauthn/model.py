"""What the WebAuthn ceremonies work on: the relying party, policies, stored credentials.

Everything here is plain data (frozen dataclasses, enums): the ceremonies in
``registration`` and ``authentication`` read it and never touch storage or a clock.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal
from uuid import UUID

from cryptography import x509

__all__ = [
    "CHALLENGE_BYTES",
    "MAX_CREDENTIAL_ID_BYTES",
    "MIN_CHALLENGE_BYTES",
    "OFFERED_ALGORITHMS",
    "Algorithm",
    "AttestationPolicy",
    "CredentialDescriptor",
    "Refusal",
    "RelyingParty",
    "StoredCredential",
    "b64url",
    "b64url_decode",
    "new_challenge",
    "user_handle_for",
]

CHALLENGE_BYTES = 32  # WebAuthn §13.4.3: at least 16 random bytes; we send 32
MIN_CHALLENGE_BYTES = 16
MAX_CREDENTIAL_ID_BYTES = 1023  # §7.1 step 25


class Refusal(StrEnum):
    """Why a ceremony refused a response: the stable ``code`` of the error it raises."""

    MALFORMED_CREDENTIAL = "malformed_credential"  # not JSON / base64url / CBOR we can read
    WRONG_CEREMONY = "wrong_ceremony"  # client data of the other ceremony (create vs get)
    CHALLENGE_MISMATCH = "challenge_mismatch"  # not the challenge this ceremony issued
    WRONG_ORIGIN = "wrong_origin"  # a page Bastion does not serve (phishing)
    CROSS_ORIGIN = "cross_origin"  # made inside a frame of another site
    WRONG_RP_ID = "wrong_rp_id"  # the authenticator scoped it to another RP ID
    USER_NOT_PRESENT = "user_not_present"  # UP flag clear
    USER_NOT_VERIFIED = "user_not_verified"  # UV flag clear where required
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"  # a key type Bastion did not offer
    ATTESTATION_INVALID = "attestation_invalid"  # the attestation statement does not verify
    ATTESTATION_NOT_TRUSTED = "attestation_not_trusted"  # no chain to a configured root
    AAGUID_NOT_ALLOWED = "aaguid_not_allowed"  # an authenticator model not on the list
    UNKNOWN_CREDENTIAL = "unknown_credential"  # not the credential (or allow list) expected
    USER_HANDLE_MISMATCH = "user_handle_mismatch"  # the passkey names another account
    INVALID_SIGNATURE = "invalid_signature"  # the assertion is not signed by the stored key
    BACKUP_ELIGIBILITY_CHANGED = "backup_eligibility_changed"  # BE differs from registration
    COUNTER_REGRESSION = "counter_regression"  # sign count did not grow: possible clone
    # Refused by the caller, around the ceremony (state the pure verifiers do not hold):
    CHALLENGE_EXPIRED = "challenge_expired"  # no challenge pending: used, expired, never issued
    DUPLICATE_CREDENTIAL = "duplicate_credential"  # this credential id is already registered


class Algorithm(IntEnum):
    """COSE algorithms Bastion offers (``pubKeyCredParams``), most preferred first."""

    EDDSA = -8  # Ed25519
    ES256 = -7  # ECDSA P-256 / SHA-256: every FIDO2 authenticator supports it
    RS256 = -257  # RSASSA-PKCS1-v1_5 / SHA-256: Windows Hello TPM keys often offer only this


OFFERED_ALGORITHMS: tuple[Algorithm, ...] = (Algorithm.EDDSA, Algorithm.ES256, Algorithm.RS256)


def new_challenge() -> bytes:
    """32 bytes from ``secrets``: the caller stores it (single use, bound, expiring)."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def user_handle_for(user_id: str) -> bytes:
    """The WebAuthn user handle of an account: its opaque random id (``usr_…``, 36 bytes).

    WebAuthn §14.6.1 asks for an opaque handle of at most 64 bytes without personal data;
    the user id is 128 random bits, never reused, and already public in tokens (``sub``).
    """
    handle = user_id.encode("ascii")
    if not 0 < len(handle) <= 64:
        raise ValueError("a user handle is 1 to 64 bytes")
    return handle


def b64url(data: bytes) -> str:
    """Base64url without padding (the encoding of every binary field in WebAuthn JSON)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url: only the URL-safe alphabet, padding optional; ``ValueError`` else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    if any(c in "+/=" for c in stripped) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.b64decode(
            stripped + "=" * (-len(stripped) % 4), altchars=b"-_", validate=True
        )
    except binascii.Error:
        raise ValueError("not base64url") from None


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who Bastion is to an authenticator (from ``webauthn_rp_id`` / ``webauthn_origins``).

    ``origins`` are exact serialized origins (``https://host[:port]``), compared as strings
    (WebAuthn §13.4.9): several are allowed for a console behind a proxy.
    """

    id: str
    name: str
    origins: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.id or not self.name or not self.origins:
            raise ValueError("a relying party needs an id, a name and at least one origin")


@dataclass(frozen=True, slots=True)
class AttestationPolicy:
    """Which authenticators may register (``webauthn_attestation``, roots, AAGUID list).

    - ``none`` (default): Bastion asks for no attestation and trusts none; it still checks
      any statement a browser sends (§7.1 step 22) but does not judge where the key came from.
    - ``direct``: the statement must chain to one of ``roots`` (at the ceremony's time);
      self attestation and ``none`` are refused, and, when ``allowed_aaguids`` is set, the
      authenticator model must be on it. An AAGUID without verified attestation is only
      the authenticator's own claim, so the list needs ``direct``.
    """

    conveyance: Literal["none", "direct"] = "none"
    roots: tuple[x509.Certificate, ...] = ()
    allowed_aaguids: frozenset[UUID] | None = None

    def __post_init__(self) -> None:
        if self.conveyance == "direct" and not self.roots:
            raise ValueError("direct attestation needs at least one trusted root certificate")
        if self.allowed_aaguids is not None and self.conveyance != "direct":
            raise ValueError("an AAGUID allow-list needs direct attestation")


@dataclass(frozen=True, slots=True)
class CredentialDescriptor:
    """An entry of ``excludeCredentials`` / ``allowCredentials``."""

    id: bytes
    transports: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "public-key", "id": b64url(self.id)}
        if self.transports:
            entry["transports"] = list(self.transports)
        return entry


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """The credential record (§7.1 step 27) a ceremony needs, as the caller stored it.

    Storage (``VerifiedRegistration.factor_columns()`` writes, :meth:`from_row` reads):
    ``factors.credential_id`` = ``b64url(credential_id)``, ``replay_counter`` = ``sign_count``,
    ``backup_eligible`` (fixed at registration, never updated), ``aaguid``, and
    ``public_data`` (the COSE public key and descriptions).
    """

    credential_id: bytes
    public_key: bytes  # COSE_Key, as the authenticator sent it
    sign_count: int
    backup_eligible: bool
    transports: tuple[str, ...] = ()
    # The rest of ``factors.public_data`` (algorithm, attestation, discoverable…), for display.
    public_data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def descriptor(self) -> CredentialDescriptor:
        return CredentialDescriptor(id=self.credential_id, transports=self.transports)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredCredential:
        """From a ``factors`` row (``credential_id``, ``public_data``, ``replay_counter``,
        ``backup_eligible``); ``ValueError`` when the row is not a WebAuthn credential."""
        public_data = row["public_data"] or {}
        if row["credential_id"] is None or row["backup_eligible"] is None:
            raise ValueError("not a WebAuthn credential row")
        try:
            return cls(
                credential_id=b64url_decode(row["credential_id"]),
                public_key=b64url_decode(public_data["public_key"]),
                sign_count=int(row["replay_counter"] or 0),
                backup_eligible=bool(row["backup_eligible"]),
                transports=tuple(public_data.get("transports", ())),
                public_data=public_data,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError("not a WebAuthn credential row") from exc
