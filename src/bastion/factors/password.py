"""Passwords: argon2id hashing and verification, and NIST SP 800-63B-4 rules for new ones."""

from __future__ import annotations

import functools
import itertools
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bastion.errors import ConfigurationError, InvalidCredentials, ValidationError

__all__ = [
    "BLOCKLIST_SOURCE",
    "MAX_LENGTH",
    "PROFILES",
    "VerifiedPassword",
    "burn_dummy_verify",
    "check_new_password",
    "hash_password",
    "is_blocklisted",
    "make_hasher",
    "verify_password",
]

Profile = Literal["owasp", "test"]


@dataclass(frozen=True, slots=True)
class _Argon2Params:
    time_cost: int
    memory_cost: int  # KiB
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16


PROFILES: dict[str, _Argon2Params] = {
    # OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
    "owasp": _Argon2Params(time_cost=2, memory_cost=19456, parallelism=1),
    # Tests only: as cheap as argon2 allows. Never in production.
    "test": _Argon2Params(time_cost=1, memory_cost=8, parallelism=1),
}

MAX_LENGTH = 256  # longest new password, code points (SP 800-63B-4 asks for >= 64)
_MAX_PRESENTED = 1024  # longer input is rejected before hashing (DoS guard)
_MIN_CONTEXT_WORD = 4  # shorter context words only reject exact matches
_SERVICE_WORDS = ("bastion",)

BLOCKLIST_SOURCE = (
    "zxcvbn `frequency_lists.FREQUENCY_LISTS['passwords']`: the 30,000 most common "
    "passwords from public breach corpora, compared case-insensitively after NFKC"
)


def make_hasher(profile: str) -> argon2.PasswordHasher:
    """An argon2id hasher for a named profile (``owasp`` in production, ``test`` in tests)."""
    try:
        params = PROFILES[profile]
    except KeyError:
        raise ConfigurationError(f"Unknown argon2 profile {profile!r}.") from None
    return argon2.PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        salt_len=params.salt_len,
        type=argon2.Type.ID,
    )


def _normalize(password: str) -> str:
    # SP 800-63B-4 §3.1.1.2: apply NFKC (or NFKD) before hashing, so the same password
    # typed on different keyboards / input methods verifies.
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, *, hasher: argon2.PasswordHasher) -> str:
    """The argon2id PHC string of the NFKC-normalised password (random salt each call)."""
    return hasher.hash(_normalize(password))


@dataclass(frozen=True, slots=True)
class VerifiedPassword:
    needs_rehash: bool  # stored with other parameters than ``hasher``: store a fresh hash


def verify_password(
    *, stored_hash: str, presented: str, hasher: argon2.PasswordHasher
) -> VerifiedPassword:
    """Check ``presented`` against ``stored_hash`` or raise ``InvalidCredentials``.

    A malformed or empty stored hash fails the same way as a wrong password.
    """
    if len(presented) > _MAX_PRESENTED:
        raise InvalidCredentials()
    try:
        hasher.verify(stored_hash, _normalize(presented))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise InvalidCredentials() from None
    return VerifiedPassword(needs_rehash=hasher.check_needs_rehash(stored_hash))


_dummy_lock = threading.Lock()
_dummy_hashes: dict[tuple[object, ...], str] = {}


def _hasher_key(hasher: argon2.PasswordHasher) -> tuple[object, ...]:
    return (
        hasher.type,
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
    )


def _dummy_hash(hasher: argon2.PasswordHasher) -> str:
    key = _hasher_key(hasher)
    with _dummy_lock:
        cached = _dummy_hashes.get(key)
        if cached is None:
            cached = hasher.hash(secrets.token_urlsafe(24))
            _dummy_hashes[key] = cached
        return cached


def burn_dummy_verify(presented: str, *, hasher: argon2.PasswordHasher) -> None:
    """Spend the time of a real verification (unknown user, suspended user …).

    The dummy hash is made once per parameter set with the same hasher, so the timing of
    "no such user" matches that of "wrong password". It never matches.
    """
    if len(presented) > _MAX_PRESENTED:
        return
    try:
        hasher.verify(_dummy_hash(hasher), _normalize(presented))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return


@functools.cache
def _blocklist() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # ~30k entries: load on first use

    words: list[str] = list(FREQUENCY_LISTS["passwords"])
    return frozenset(unicodedata.normalize("NFKC", w).casefold() for w in words)


def is_blocklisted(password: str) -> bool:
    """True if the (NFKC, case-folded) password is on the common-password list."""
    return _normalize(password).casefold() in _blocklist()


def _weak(detail: str, reason: str, **fields: object) -> ValidationError:
    return ValidationError(detail, code="weak_password", reason=reason, **fields)


def _is_repetitive(folded: str) -> bool:
    """One repeated character ("aaaaaaaa") or a run of consecutive ones ("12345678")."""
    if len(set(folded)) == 1:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(folded)}
    return steps in ({1}, {-1})


def check_new_password(password: str, *, min_length: int, context_words: Sequence[str] = ()) -> str:
    """Apply SP 800-63B-4 §3.1.1.2 to a new password; return it NFKC-normalised.

    ``min_length`` is 8 when a second factor is enforced and 15 when the password may
    be used alone. No composition rules. Raises ``ValidationError(code="weak_password")``
    with a ``reason`` (too_short, too_long, repetitive, common_password,
    contains_context_word); the message never echoes the password.
    """
    if not 8 <= min_length <= 64:
        raise ConfigurationError("The minimum password length must be between 8 and 64.")
    normalized = _normalize(password)
    length = len(normalized)  # code points, after normalisation
    if length < min_length:
        raise _weak(
            f"Choose a longer password: at least {min_length} characters. A passphrase "
            "of several unrelated words is long and easy to remember.",
            "too_short",
            min_length=min_length,
        )
    if length > MAX_LENGTH:
        raise _weak(
            f"Choose a shorter password: at most {MAX_LENGTH} characters.",
            "too_long",
            max_length=MAX_LENGTH,
        )
    folded = normalized.casefold()
    if _is_repetitive(folded):
        raise _weak(
            "Choose a password that is not one repeated character or a simple sequence; "
            "a passphrase of several unrelated words works well.",
            "repetitive",
        )
    if folded in _blocklist():
        raise _weak(
            "This password is among the most common passwords and is easy to guess. "
            "Choose a longer passphrase of several unrelated words.",
            "common_password",
        )
    for word in (*context_words, *_SERVICE_WORDS):
        context = _normalize(word).strip().casefold()
        if not context:
            continue
        if folded == context or (len(context) >= _MIN_CONTEXT_WORD and context in folded):
            raise _weak(
                "Choose a password that does not contain your username, your name or the "
                "name of this service; a passphrase of several unrelated words works well.",
                "contains_context_word",
            )
    return normalized
