"""Assurance is computed from verified factors, never asserted (NIST SP 800-63B, RFC 8176).

- ``aal1``: one factor, or several factors of ONE category (password + security question
  is two-step verification, not MFA; ``amr`` gets no ``mfa``).
- ``aal2``: at least two distinct categories; ``amr`` gains ``mfa``. A WebAuthn credential
  that verified the user (PIN or biometric) proves two categories on its own, so a synced
  passkey with user verification reaches ``aal2``.
- ``aal3``: a phishing-resistant, device-bound (not backup-eligible) authenticator that
  verified the user: a multi-factor cryptographic authenticator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bastion.factors.catalog import CATALOG, Category, Method

__all__ = [
    "AAL1",
    "AAL2",
    "AAL3",
    "ACR_VALUES",
    "Assurance",
    "VerifiedFactor",
    "acr_rank",
    "acr_satisfies",
    "compute_assurance",
]

AAL1 = "aal1"
AAL2 = "aal2"
AAL3 = "aal3"
ACR_VALUES: tuple[str, ...] = (AAL1, AAL2, AAL3)  # weakest first
_RANK = {acr: rank for rank, acr in enumerate(ACR_VALUES, start=1)}

# RFC 8176 values that name a biometric; any other user verification counts as knowledge
# (PIN / pattern / device passcode, which is also every platform's biometric fallback).
_BIOMETRIC_AMR = frozenset({"bio", "face", "fpt", "iris", "retina", "vbm"})


@dataclass(frozen=True, slots=True)
class VerifiedFactor:
    """One factor the user proved in this login or step-up."""

    method: Method
    amr: tuple[str, ...]
    phishing_resistant: bool = False
    device_bound: bool = False  # WebAuthn: not backup-eligible (BE flag clear)
    user_verified: bool = False  # WebAuthn: UV flag set


@dataclass(frozen=True, slots=True)
class Assurance:
    acr: str
    amr: tuple[str, ...]  # sorted, de-duplicated
    categories: tuple[Category, ...]  # sorted, de-duplicated


def _categories(factor: VerifiedFactor) -> set[Category]:
    props = CATALOG[factor.method]
    found = {props.category}
    if props.multi_factor_capable and factor.user_verified:
        biometric = any(value in _BIOMETRIC_AMR for value in factor.amr)
        found.add(Category.INHERENCE if biometric else Category.KNOWLEDGE)
    return found


def _is_aal3_authenticator(factor: VerifiedFactor) -> bool:
    # Flags count only for methods the catalog says can carry them (no TOTP "aal3").
    props = CATALOG[factor.method]
    return (
        props.phishing_resistant
        and props.multi_factor_capable
        and factor.phishing_resistant
        and factor.device_bound
        and factor.user_verified
    )


def compute_assurance(factors: Sequence[VerifiedFactor]) -> Assurance:
    """The ``acr``/``amr`` that ``factors`` together reach.

    Raises ``ValueError`` for an empty sequence: no factor is no authentication.
    """
    if not factors:
        raise ValueError("assurance needs at least one verified factor")
    categories: set[Category] = set()
    amr: set[str] = set()
    for factor in factors:
        categories |= _categories(factor)
        amr.update(factor.amr)
    if any(_is_aal3_authenticator(f) for f in factors):
        acr = AAL3
    elif len(categories) >= 2:
        acr = AAL2
    else:
        acr = AAL1
    if len(categories) >= 2:
        amr.add("mfa")
    else:
        amr.discard("mfa")  # never claimed by a verifier, only earned here
    return Assurance(
        acr=acr,
        amr=tuple(sorted(amr)),
        categories=tuple(sorted(categories, key=lambda c: c.value)),
    )


def acr_rank(acr: str) -> int:
    """1 for aal1 … 3 for aal3; 0 for anything unknown (ranks below aal1: fail closed)."""
    return _RANK.get(acr, 0)


def acr_satisfies(have: str, need: str) -> bool:
    """Whether an ``acr`` of ``have`` meets a requirement of ``need``.

    Unknown values never satisfy, and an unknown requirement is never met (a typo in a
    policy must not open the door).
    """
    return acr_rank(have) > 0 and acr_rank(need) > 0 and acr_rank(have) >= acr_rank(need)
