"""TOTP (RFC 6238) on top of HOTP (RFC 4226), with stored replay state.

The caller unseals the seed, calls :func:`verify_totp` with the factor's stored
``last_used_step`` (``factors.replay_counter``) and, in the same transaction, stores the
returned ``step`` as the new ``last_used_step``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyotp
import segno

from bastion.errors import ConfigurationError, InvalidCode

__all__ = [
    "DIGESTS",
    "SECRET_BYTES",
    "VerifiedTotp",
    "hotp",
    "new_totp_secret",
    "provisioning_uri",
    "qr_svg",
    "time_step",
    "totp_code",
    "verify_totp",
]

SECRET_BYTES = 20  # 160 bits: RFC 4226 §4 R6 recommends 160; 32 base32 chars, no padding
DIGESTS: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
_MAX_WINDOW = 10
_MAX_INPUT = 64  # longer input is not a code; refuse before any work
_ASCII_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class VerifiedTotp:
    step: int  # store as the factor's new last_used_step
    drift: int  # matched step minus the current step (-window..+window), for audit


def new_totp_secret() -> str:
    """A fresh base32 seed of 160 random bits (no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _digest(name: str) -> Callable[..., Any]:
    try:
        return DIGESTS[name]
    except KeyError:
        raise ValueError(f"unsupported TOTP digest {name!r}") from None


def _otp(secret: str | bytes, digits: int, digest: str) -> pyotp.OTP:
    if not 6 <= digits <= 8:  # RFC 4226 §5.3: 6 to 8 digits
        raise ValueError("digits must be between 6 and 8")
    if isinstance(secret, bytes):
        secret = base64.b32encode(secret).decode("ascii")
    algorithm = _digest(digest)
    try:
        return pyotp.OTP(secret, digits=digits, digest=algorithm)
    except (binascii.Error, ValueError):
        # A seed that does not decode is a server-side fault, never the user's.
        raise ConfigurationError("A stored TOTP secret is malformed.") from None


def hotp(secret: str | bytes, counter: int, *, digits: int = 6, digest: str = "sha1") -> str:
    """RFC 4226 HOTP value for ``counter``; ``secret`` is base32 text or the raw key."""
    return str(_otp(secret, digits, digest).generate_otp(counter))


def time_step(now: datetime, *, period: int = 30) -> int:
    """RFC 6238 §4.2: T = floor((unix time - T0) / X), T0 = 0."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    if period <= 0:
        raise ValueError("period must be positive")
    return int(now.timestamp()) // period


def totp_code(
    *,
    secret: str | bytes,
    now: datetime,
    digits: int = 6,
    digest: str = "sha1",
    period: int = 30,
) -> str:
    """The TOTP value at ``now`` (for tests, and to show what an app would display)."""
    return hotp(secret, time_step(now, period=period), digits=digits, digest=digest)


def provisioning_uri(*, secret: str, account_name: str, issuer: str) -> str:
    """``otpauth://totp/…`` with the defaults every app supports (SHA1, 6 digits, 30 s)."""
    return str(pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer))


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no XML declaration)."""
    qr = segno.make(uri, error="m", micro=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", xmldecl=False, svgns=True, scale=4, border=4, nl=False)
    return out.getvalue().decode("utf-8")


def verify_totp(
    *,
    secret: str | bytes,
    code: str,
    now: datetime,
    last_used_step: int,
    window: int = 1,
    digits: int = 6,
    digest: str = "sha1",
    period: int = 30,
) -> VerifiedTotp:
    """Verify a presented TOTP code or raise ``InvalidCode``.

    Accepts time steps ``now - window .. now + window`` (RFC 6238 §5.2, one step of
    clock drift each way) and refuses any step ``<= last_used_step``: a code accepted
    once is never accepted again (RFC 6238 §5.2, "MUST NOT accept the second attempt").
    """
    if not 0 <= window <= _MAX_WINDOW:
        raise ValueError(f"window must be between 0 and {_MAX_WINDOW}")
    otp = _otp(secret, digits, digest)
    current = time_step(now, period=period)

    # Shape first: exactly `digits` ASCII digits once spaces are removed.
    malformed = f"Enter the {digits}-digit code from your authenticator app."
    if len(code) > _MAX_INPUT:
        raise InvalidCode(malformed, reason="malformed")
    candidate = "".join(code.split())
    if len(candidate) != digits or not set(candidate) <= _ASCII_DIGITS:
        raise InvalidCode(malformed, reason="malformed")
    presented = candidate.encode("ascii")

    # Compare against every step in the window, without stopping at the first match.
    fresh: int | None = None
    replayed = False
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        matches = hmac.compare_digest(otp.generate_otp(step).encode("ascii"), presented)
        if matches and step > last_used_step:
            fresh = step if fresh is None else max(fresh, step)
        elif matches:
            replayed = True
    if fresh is not None:
        return VerifiedTotp(step=fresh, drift=fresh - current)
    if replayed:
        raise InvalidCode(
            "This code was already used. Wait for the next code and try again.",
            reason="replayed",
        )
    raise InvalidCode("The code is not valid.", reason="mismatch")
