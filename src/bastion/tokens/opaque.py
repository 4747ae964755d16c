"""Opaque secrets (API keys, refresh tokens, setup and enrollment links).

Each secret is a type prefix plus 256 random bits, e.g. ``bst_sk_<43 base64url chars>``.
The ``bst_`` prefix lets secret scanners and log filters recognise a leaked value, and
the kind part stops a refresh token from being accepted where an API key is expected.
Only :func:`hash_secret` of a value is stored; the value is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Final, Literal

from bastion.errors import InvalidToken

__all__ = [
    "PREFIXES",
    "NewSecret",
    "SecretKind",
    "hash_secret",
    "hint",
    "new_secret",
    "parse_secret",
]

SecretKind = Literal["api_key", "refresh", "setup", "enroll", "device"]

PREFIXES: Final[dict[str, str]] = {
    "api_key": "bst_sk_",  # service (account) key
    "refresh": "bst_rt_",
    "setup": "bst_setup_",
    "enroll": "bst_enroll_",
    "device": "bst_dev_",  # remembered-device credential (bastion.risk.devices)
}

_RANDOM_BYTES: Final = 32  # 256 bits
_BODY_LENGTH: Final = 43  # len(secrets.token_urlsafe(32)): base64url without padding
_BODY_RE: Final = re.compile(rf"[A-Za-z0-9_-]{{{_BODY_LENGTH}}}")
_HINT_LENGTH: Final = 4


@dataclass(frozen=True)
class NewSecret:
    """A freshly minted secret: give ``value`` to the user once, store ``hash``."""

    value: str = field(repr=False)
    hash: str


def _prefix(kind: str) -> str:
    try:
        return PREFIXES[kind]
    except KeyError:
        raise ValueError(f"unknown secret kind {kind!r}") from None


def hash_secret(value: str) -> str:
    """SHA-256 hex of the whole value (prefix included), for storage and lookup.

    A fast hash is right here, unlike for passwords: the value carries 256 bits from
    ``secrets``, so there is no dictionary to try and a slow KDF would only cost CPU on
    every request (~1 µs for SHA-256 against ~44 ms for argon2id). Lookups by this hash
    also mean no secret is ever compared with ``==``.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret(kind: SecretKind) -> NewSecret:
    value = _prefix(kind) + secrets.token_urlsafe(_RANDOM_BYTES)
    return NewSecret(value=value, hash=hash_secret(value))


def parse_secret(value: str, kind: SecretKind) -> str:
    """Check the shape of a presented secret of ``kind``; return its hash for lookup.

    Only the shape is checked here (prefix, alphabet, length): whether a secret with that
    hash exists, is unexpired and unrevoked is the caller's storage lookup.
    """
    prefix = _prefix(kind)
    if (
        not isinstance(value, str)
        or len(value) != len(prefix) + _BODY_LENGTH
        or not value.startswith(prefix)
        or not _BODY_RE.fullmatch(value, len(prefix))
    ):
        raise InvalidToken("The secret is malformed.")
    return hash_secret(value)


def hint(value: str) -> str:
    """The last four characters, to tell keys apart in lists (never enough to guess one)."""
    return value[-_HINT_LENGTH:]
