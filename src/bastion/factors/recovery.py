"""Recovery codes: single-use look-up secrets (SP 800-63B §3.1.2), shown once, stored hashed.

Each code is 16 Crockford base32 characters (80 random bits), shown as
``ABCD-EFGH-JKMN-PQRS``. Single use is enforced by the caller: it passes only the
unused codes' hashes and sets ``used_at`` on the matched row in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.errors import InvalidCode

__all__ = [
    "CODE_LENGTH",
    "VerifiedRecoveryCode",
    "generate_recovery_codes",
    "hash_recovery_code",
    "normalize_recovery_code",
    "verify_recovery_code",
]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_ALPHABET_SET = frozenset(_ALPHABET)
CODE_LENGTH = 16  # 16 x 5 bits = 80 bits of entropy
_GROUP = 4
_MAX_INPUT = 64
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def generate_recovery_codes(count: int = 10) -> list[str]:
    """``count`` fresh codes, each 80 random bits, grouped for reading (``ABCD-EFGH-…``)."""
    if not 1 <= count <= 100:
        raise ValueError("count must be between 1 and 100")
    codes: list[str] = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
        codes.append("-".join(raw[i : i + _GROUP] for i in range(0, CODE_LENGTH, _GROUP)))
    return codes


def normalize_recovery_code(code: str) -> str:
    """Upper-case, drop spaces and dashes, read O as 0 and I/L as 1 (Crockford decoding)."""
    compact = "".join(code.split()).replace("-", "").upper()
    return compact.translate(_CROCKFORD_ALIASES)


def hash_recovery_code(code: str) -> str:
    """SHA-256 hex of the normalised code.

    A fast hash is right here: with 80 random bits per code, an offline guess costs
    2^79 hashes on average, so a slow KDF would add latency without adding safety
    (the same reasoning as for API keys).
    """
    return hashlib.sha256(normalize_recovery_code(code).encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifiedRecoveryCode:
    code_id: str  # mark this row used (used_at) in the same transaction


def verify_recovery_code(
    *, presented: str, unused_hashes: Mapping[str, str]
) -> VerifiedRecoveryCode:
    """Match ``presented`` against the user's unused codes (id -> hash) or raise ``InvalidCode``."""
    if len(presented) > _MAX_INPUT:
        raise InvalidCode("Enter one of your recovery codes.", reason="malformed")
    normalized = normalize_recovery_code(presented)
    if len(normalized) != CODE_LENGTH or not set(normalized) <= _ALPHABET_SET:
        raise InvalidCode("Enter one of your recovery codes.", reason="malformed")
    digest = hash_recovery_code(normalized).encode("ascii")

    # Compare against every unused code; no early exit.
    matched: str | None = None
    for code_id, stored in unused_hashes.items():
        if hmac.compare_digest(digest, stored.encode("ascii", "replace")) and matched is None:
            matched = code_id
    if matched is None:
        raise InvalidCode("The recovery code is not valid or was already used.", reason="mismatch")
    return VerifiedRecoveryCode(code_id=matched)
