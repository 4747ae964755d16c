"""Access tokens: JWTs signed with EdDSA (RFC 7519, RFC 8037, RFC 9068, RFC 8725).

``issue_access_token`` signs; ``verify_access_token`` is the pure verifier: it takes the
token, the key ring, the expected issuer/audience and the current time, and returns a
frozen :class:`VerifiedAccessToken` or raises :class:`~bastion.errors.InvalidToken`.

The verifier never lets the token choose anything: the algorithm allow-list is the
constant ``["EdDSA"]``, the key comes from our own ring by ``kid``, headers that point
elsewhere for keys (``jku``, ``x5u``, ``jwk``, ``x5c``) or demand extensions (``crit``)
are refused, and PyJWT's own clock is never consulted: ``exp``/``nbf``/``iat`` are
checked here against the ``now`` passed in. Errors carry our own messages only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import jwt

from bastion.clock import from_epoch, to_epoch
from bastion.config import MAX_ACCESS_TOKEN_TTL
from bastion.errors import InvalidToken
from bastion.tokens.signing_keys import KeyRing

__all__ = [
    "ALGORITHMS",
    "MAX_LEEWAY",
    "MAX_TOKEN_BYTES",
    "TOKEN_TYPE",
    "IssuedToken",
    "VerifiedAccessToken",
    "issue_access_token",
    "verify_access_token",
]

ALGORITHMS: Final = ("EdDSA",)  # the only accepted `alg`, from us, never from the token
TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, RFC 9068 §2.1)
MAX_TOKEN_BYTES: Final = 8 * 1024
MAX_LEEWAY: Final = 120  # matches the upper bound of the `clock_skew` setting

# RFC 9068 §4 also allows the full media type; media types compare case-insensitively.
_ACCEPTED_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
# Header members that would let the token pick its own key or extensions (RFC 8725 §3.10).
_FORBIDDEN_HEADERS: Final = ("jku", "x5u", "jwk", "x5c", "crit")
_ALLOWED_HEADERS: Final = frozenset({"alg", "typ", "kid"})
_REGISTERED_CLAIMS: Final = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "acr", "amr", "tenant"}
    | {"roles", "sid"}
)
_REQUIRED_CLAIMS: Final = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "acr",
    "amr",
    "tenant",
    "roles",
)
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_KID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ED25519_SIGNATURE_LEN: Final = 64

# The one signature algorithm object, taken from PyJWT through our allow-list. The token's
# `alg` only has to equal it (checked in `_check_header`); it never selects the code that
# verifies. We parse the token once ourselves and hand PyJWT the exact signing input: a
# second, different parser of the same bytes (`jwt.decode`) would only add a parser
# differential and ~100 µs of per-character base64 checks.
_EDDSA: Final = jwt.PyJWS(algorithms=ALGORITHMS).get_algorithm_by_name("EdDSA")


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class VerifiedAccessToken:
    """The claims of an access token that passed every check, typed."""

    issuer: str  # iss
    subject: str  # sub
    audience: tuple[str, ...]  # aud
    expires_at: datetime  # exp
    issued_at: datetime  # iat
    not_before: datetime  # nbf
    jti: str
    auth_time: datetime
    acr: str
    amr: tuple[str, ...]
    tenant: str
    roles: tuple[str, ...]
    session_id: str | None  # sid
    kid: str
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


# -- issue ---------------------------------------------------------------------------------


def issue_access_token(
    *,
    keyring: KeyRing,
    issuer: str,
    audience: str,
    subject: str,
    tenant: str,
    roles: Sequence[str],
    acr: str,
    amr: Sequence[str],
    auth_time: datetime,
    session_id: str | None,
    ttl: int,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> IssuedToken:
    """Sign a new access token with the active key. ``ttl`` is at most 900 s."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    if ttl > MAX_ACCESS_TOKEN_TTL:
        raise ValueError(f"access tokens live at most {MAX_ACCESS_TOKEN_TTL} seconds")
    if isinstance(roles, str) or isinstance(amr, str):
        raise ValueError("roles and amr are sequences of strings, not a string")
    if extra:
        clash = _REGISTERED_CLAIMS.intersection(extra)
        if clash:
            raise ValueError(f"extra claims may not override {sorted(clash)}")

    issued_at = to_epoch(now)
    expires = issued_at + ttl
    jti = secrets.token_urlsafe(16)  # 128 bits
    claims: dict[str, Any] = {
        **(extra or {}),
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": expires,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": jti,
        "auth_time": to_epoch(auth_time),
        "acr": acr,
        "amr": list(amr),
        "tenant": tenant,
        "roles": list(roles),
    }
    if session_id is not None:
        claims["sid"] = session_id
    signing_key = keyring.active
    token = jwt.encode(
        claims,
        signing_key.private_key,
        algorithm="EdDSA",
        headers={"typ": TOKEN_TYPE, "kid": signing_key.kid},
    )
    return IssuedToken(token=token, jti=jti, expires_at=from_epoch(expires))


# -- verify --------------------------------------------------------------------------------


def verify_access_token(
    *,
    token: str,
    keyring: KeyRing,
    issuer: str,
    audience: str,
    now: datetime,
    leeway: int = 30,
) -> VerifiedAccessToken:
    """Verify an access token completely or raise ``InvalidToken`` (fail closed).

    Pure: reads no clock, database or network. ``leeway`` (clock skew, seconds) is bounded
    to ``0..MAX_LEEWAY``.
    """
    if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= MAX_LEEWAY:
        raise ValueError(f"leeway must be an int between 0 and {MAX_LEEWAY}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware UTC datetime")

    # RFC 8725 §3.x: cap what we parse before doing any work.
    if not isinstance(token, str) or not token:
        raise InvalidToken("The token is missing.")
    if len(token) > MAX_TOKEN_BYTES or not token.isascii():
        raise InvalidToken("The token is too large or not ASCII.")

    # RFC 7515 §7.1: compact serialization has exactly three segments.
    segments = token.split(".")
    if len(segments) != 3:
        raise InvalidToken("The token is not a compact JWS.")
    header_b64, payload_b64, signature_b64 = segments

    header = _decode_json_segment(header_b64, "header")
    kid = _check_header(header)

    public_key = keyring.public_key(kid, now=now, skew=leeway)

    payload_bytes = _decode_segment(payload_b64, "payload")
    signature = _decode_segment(signature_b64, "signature")
    if len(signature) != _ED25519_SIGNATURE_LEN:
        raise InvalidToken("The token signature is malformed.")

    # RFC 7515 §5.2: verify the signature before reading a single claim.
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not _EDDSA.verify(signing_input, public_key, signature):
        raise InvalidToken("The token signature does not verify.")

    claims = _parse_json(payload_bytes, "payload")
    return _check_claims(
        claims, kid=kid, issuer=issuer, audience=audience, now=to_epoch(now), leeway=leeway
    )


def _decode_segment(segment: str, name: str) -> bytes:
    if not _B64URL_RE.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken(f"The token {name} is not base64url.")
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"The token {name} is not base64url.") from None
    # Canonical encoding only (unused trailing bits zero): one token, one string.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment.encode("ascii"):
        raise InvalidToken(f"The token {name} is not canonical base64url.")
    return decoded


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Two parsers reading a duplicated member differently is an attack surface.
        raise ValueError("duplicate member")
    return result


def _parse_json(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError):
        raise InvalidToken(f"The token {name} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"The token {name} is not a JSON object.")
    return value


def _decode_json_segment(segment: str, name: str) -> dict[str, Any]:
    return _parse_json(_decode_segment(segment, name), name)


def _check_header(header: Mapping[str, Any]) -> str:
    """RFC 8725 §3.1/§3.10/§3.11 and RFC 9068 §4 header checks; returns the kid."""
    if "alg" not in header:
        raise InvalidToken("The token header has no algorithm.")
    alg = header["alg"]
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidToken("The token algorithm is not accepted.")
    for name in _FORBIDDEN_HEADERS:
        if name in header:
            raise InvalidToken(f"The token header member {name!r} is not accepted.")
    if not _ALLOWED_HEADERS.issuperset(header):
        raise InvalidToken("The token header has unexpected members.")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
        raise InvalidToken("The token is not an access token (typ).")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID_RE.fullmatch(kid):
        raise InvalidToken("The token header has no valid key id.")
    return kid


def _str_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"The token claim {name!r} has the wrong type.")
    return value


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken(f"The token claim {name!r} has the wrong type.")
    return value


def _str_list_claim(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(f"The token claim {name!r} has the wrong type.")
    return tuple(value)


def _check_claims(
    claims: Mapping[str, Any],
    *,
    kid: str,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
) -> VerifiedAccessToken:
    # RFC 9068 §2.2: required claims, each with its type.
    for name in _REQUIRED_CLAIMS:
        if name not in claims:
            raise InvalidToken(f"The token has no {name!r} claim.")
    token_issuer = _str_claim(claims, "iss")
    subject = _str_claim(claims, "sub")
    raw_aud = claims["aud"]
    aud: tuple[str, ...]
    if isinstance(raw_aud, str):
        aud = (raw_aud,)
    elif isinstance(raw_aud, list) and raw_aud and all(isinstance(a, str) for a in raw_aud):
        aud = tuple(raw_aud)
    else:
        raise InvalidToken("The token claim 'aud' has the wrong type.")
    exp = _int_claim(claims, "exp")
    iat = _int_claim(claims, "iat")
    nbf = _int_claim(claims, "nbf")
    auth_time = _int_claim(claims, "auth_time")
    jti = _str_claim(claims, "jti")
    acr = _str_claim(claims, "acr")
    amr = _str_list_claim(claims, "amr")
    tenant = _str_claim(claims, "tenant")
    roles = _str_list_claim(claims, "roles")
    session_id: str | None = None
    if claims.get("sid") is not None:
        session_id = _str_claim(claims, "sid")

    # RFC 7519 §4.1.4/§4.1.5 against the time passed in, with bounded leeway.
    if exp <= now - leeway:
        raise InvalidToken("The token has expired.")
    if nbf > now + leeway:
        raise InvalidToken("The token is not valid yet.")
    if iat > now + leeway:
        raise InvalidToken("The token was issued in the future.")
    if exp <= iat:
        raise InvalidToken("The token expires before it was issued.")
    if exp - iat > MAX_ACCESS_TOKEN_TTL + leeway:
        raise InvalidToken("The token lifetime is longer than allowed.")
    if auth_time > iat + leeway:
        raise InvalidToken("The token authentication time is after its issue time.")

    # RFC 9068 §4 / RFC 7519 §4.1.1, §4.1.3.
    if token_issuer != issuer:
        raise InvalidToken("The token was issued by someone else.")
    if audience not in aud:
        raise InvalidToken("The token is meant for another audience.")

    extra = {name: value for name, value in claims.items() if name not in _REGISTERED_CLAIMS}
    return VerifiedAccessToken(
        issuer=token_issuer,
        subject=subject,
        audience=aud,
        expires_at=from_epoch(exp),
        issued_at=from_epoch(iat),
        not_before=from_epoch(nbf),
        jti=jti,
        auth_time=from_epoch(auth_time),
        acr=acr,
        amr=amr,
        tenant=tenant,
        roles=roles,
        session_id=session_id,
        kid=kid,
        extra=MappingProxyType(extra),
    )
