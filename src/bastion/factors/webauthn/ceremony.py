"""Steps both ceremonies share: reading the browser's JSON and checking the client data.

Each check raises the ceremony's own error class (``AttestationRefused`` for §7.1,
``AssertionRefused`` for §7.2) with a stable :class:`Refusal` code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from webauthn.helpers.structs import AuthenticatorData

from bastion.errors import WebAuthnRefused
from bastion.factors.webauthn.model import Refusal, RelyingParty, b64url_decode

__all__ = [
    "MAX_FIELD_CHARS",
    "ClientData",
    "check_client_data",
    "check_flags",
    "check_rp_id_hash",
    "library_parse",
    "refuse",
    "top_level_id",
]

# Bounds before any decoding: a TPM attestation with its chain is ~6 KiB of base64url.
MAX_FIELD_CHARS = 64 * 1024
_MAX_CLIENT_DATA_BYTES = 8 * 1024

T = TypeVar("T")


def refuse(error: type[WebAuthnRefused], reason: Refusal, detail: str) -> NoReturn:
    """Raise the ceremony's error; a library exception being handled is not chained."""
    raise error(reason.value, detail) from None


def library_parse(
    error: type[WebAuthnRefused],
    parse: Callable[[dict[str, Any]], T],
    credential: object,
    *,
    binary: tuple[str, ...],
) -> T:
    """Shape check, then py_webauthn's parser for ``PublicKeyCredential`` JSON (§7.1/§7.2 step 3).

    ``binary`` names the ``response`` members that are base64url: they (and ``rawId``) are
    decoded strictly first, because the library's decoder skips characters it does not know.
    Anything unreadable is ``malformed_credential``; no library message is kept.
    """
    malformed = "The credential could not be read."
    if not isinstance(credential, Mapping):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The credential must be a JSON object.")
    response = credential.get("response")
    if not isinstance(response, Mapping):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    for value in [credential.get("rawId"), *(response.get(name) for name in binary)]:
        if value is None:
            continue  # a missing member is the parser's to report
        if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
            refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
        try:
            b64url_decode(value)
        except ValueError:
            refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    try:
        return parse(dict(credential))
    except Exception:  # the library raises many types on crafted input; all mean malformed
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)


def top_level_id(error: type[WebAuthnRefused], credential_id: str, raw_id: bytes) -> None:
    """``id`` must be the base64url form of ``rawId`` (the two are one value)."""
    try:
        same = b64url_decode(credential_id) == raw_id
    except ValueError:
        same = False
    if not same or not raw_id:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, "The credential id and rawId differ.")


@dataclass(frozen=True, slots=True)
class ClientData:
    """The fields of ``clientDataJSON`` (§5.8.1) a ceremony checks."""

    type: str
    challenge: bytes
    origin: str
    cross_origin: bool
    top_origin: str | None


def _parse_client_data(error: type[WebAuthnRefused], raw: bytes) -> ClientData:
    malformed = "The client data (clientDataJSON) could not be read."
    if len(raw) > _MAX_CLIENT_DATA_BYTES:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    try:
        # §7.1 step 5 / §7.2 step 8: UTF-8 decode, a leading BOM stripped.
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    if not isinstance(data, dict):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    kind, challenge, origin = data.get("type"), data.get("challenge"), data.get("origin")
    cross_origin, top_origin = data.get("crossOrigin", False), data.get("topOrigin")
    if not (isinstance(kind, str) and isinstance(challenge, str) and isinstance(origin, str)):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    if not isinstance(cross_origin, bool) or not isinstance(top_origin, str | None):
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    try:
        challenge_bytes = b64url_decode(challenge)
    except ValueError:
        refuse(error, Refusal.MALFORMED_CREDENTIAL, malformed)
    return ClientData(kind, challenge_bytes, origin, cross_origin, top_origin)


def check_client_data(
    error: type[WebAuthnRefused],
    raw: bytes,
    *,
    ceremony: str,
    rp: RelyingParty,
    expected_challenge: bytes,
) -> ClientData:
    """§7.1 steps 5-11 / §7.2 steps 8-14, in the spec's order."""
    client_data = _parse_client_data(error, raw)
    # §7.1 step 7 / §7.2 step 10: the ceremony this client data was made for.
    if client_data.type != ceremony:
        refuse(error, Refusal.WRONG_CEREMONY, f"The client data is not for '{ceremony}'.")
    # §7.1 step 8 / §7.2 step 11: the challenge this ceremony issued (single use is the
    # caller's job: it deletes the stored challenge in the transaction that verifies it).
    if not hmac.compare_digest(client_data.challenge, expected_challenge):
        refuse(error, Refusal.CHALLENGE_MISMATCH, "The challenge does not match this request.")
    # §7.1 step 9 / §7.2 step 12: exact origins from configuration (§13.4.9).
    if client_data.origin not in rp.origins:
        refuse(error, Refusal.WRONG_ORIGIN, "The response was made on a page of another site.")
    # §7.1 steps 10-11 / §7.2 steps 13-14: Bastion is never framed by another site.
    if client_data.cross_origin or client_data.top_origin is not None:
        refuse(error, Refusal.CROSS_ORIGIN, "The response was made inside another site's frame.")
    return client_data


def check_rp_id_hash(
    error: type[WebAuthnRefused], auth_data: AuthenticatorData, rp_id: str
) -> None:
    """§7.1 step 14 / §7.2 step 15: the authenticator scoped the credential to our RP ID."""
    expected = hashlib.sha256(rp_id.encode("utf-8")).digest()
    if not hmac.compare_digest(bytes(auth_data.rp_id_hash), expected):
        refuse(error, Refusal.WRONG_RP_ID, "The credential belongs to another relying party.")


def check_flags(
    error: type[WebAuthnRefused], auth_data: AuthenticatorData, *, require_user_verification: bool
) -> None:
    """§7.1 steps 15-17 / §7.2 steps 16-18: UP always, UV when required, BS only with BE."""
    flags = auth_data.flags
    if not flags.up:
        refuse(error, Refusal.USER_NOT_PRESENT, "The authenticator did not see the user (UP).")
    if require_user_verification and not flags.uv:
        refuse(
            error,
            Refusal.USER_NOT_VERIFIED,
            "The authenticator did not verify the user (PIN or biometric) as required.",
        )
    if flags.bs and not flags.be:
        refuse(
            error,
            Refusal.MALFORMED_CREDENTIAL,
            "The authenticator reports a backed-up credential that cannot be backed up.",
        )
