"""Assurance is computed from verified factors, never asserted (NIST SP 800-63B, RFC 8176).

- ``aal1``: one factor, or several factors of ONE category (password + security question
  is two-step verification, not MFA; ``amr`` gets no ``mfa``).
- ``aal2``: at least two distinct categories; ``amr`` gains ``mfa``. A WebAuthn credential
  that verified the user (UV: PIN or biometric) proves two categories on its own, so a
  synced passkey with user verification reaches ``aal2``.
- ``aal3``: a phishing-resistant, device-bound (not backup-eligible) authenticator AND two
  categories: the key with UV alone (a multi-factor cryptographic authenticator), or the
  key with or without UV next to a password (SP 800-63B §2.3: a single-factor
  cryptographic device used with a memorized secret). A synced passkey (BE=1) stays at
  ``aal2`` whatever accompanies it: its key can leave the device.

``amr`` values come from the catalog, plus, for WebAuthn, what the authenticator's own
flags earn: ``hwk`` (BE=0) or ``swk`` (BE=1), ``user`` (UP, always set: refused when
clear) and ``pin`` for UV. WebAuthn does not say HOW the user was verified; a PIN is the
fallback of every biometric unlock, so UV counts as knowledge and reports ``pin`` unless a
verifier reports a biometric value (then inherence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bastion.domain.assurance import AAL1, AAL2, AAL3, ACR_VALUES, acr_rank, acr_satisfies
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
    "factor_record",
]

# RFC 8176 values that name a biometric; any other user verification counts as knowledge
# (PIN / pattern / device passcode, which is also every platform's biometric fallback).
_BIOMETRIC_AMR = frozenset({"bio", "face", "fpt", "iris", "retina", "vbm"})


# RFC 8176 values a cryptographic authenticator's flags earn (WebAuthn §6.1 flags).
_DEVICE_BOUND_KEY = "hwk"  # proof of possession of a hardware-secured key (BE=0)
_SYNCED_KEY = "swk"  # proof of possession of a software-secured key (BE=1)
_USER_VERIFIED = "pin"  # UV: a PIN or pattern unlocked the key (or a biometric with one)


@dataclass(frozen=True, slots=True)
class VerifiedFactor:
    """One factor the user proved in this login or step-up.

    ``amr`` is what the verifier reported; only biometric values of a multi-factor-capable
    method are read (every other value comes from the catalog and the flags below).
    """

    method: Method
    amr: tuple[str, ...] = ()
    phishing_resistant: bool = False
    device_bound: bool = False  # WebAuthn: not backup-eligible (BE flag clear)
    user_verified: bool = False  # WebAuthn: UV flag set

    @classmethod
    def webauthn(cls, *, backup_eligible: bool, user_verified: bool) -> VerifiedFactor:
        """A verified WebAuthn assertion (UP was required by the verifier)."""
        return cls(
            method=Method.WEBAUTHN,
            phishing_resistant=True,
            device_bound=not backup_eligible,
            user_verified=user_verified,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> VerifiedFactor:
        """Read back what :func:`factor_record` stored on a login transaction."""
        return cls(
            method=Method(record["method"]),
            amr=tuple(record.get("amr", ())),
            phishing_resistant=bool(record.get("phishing_resistant", False)),
            device_bound=bool(record.get("device_bound", False)),
            user_verified=bool(record.get("user_verified", False)),
        )


def factor_record(factor: VerifiedFactor) -> dict[str, Any]:
    """A verified factor as a login transaction keeps it (JSON)."""
    return {
        "method": factor.method.value,
        "amr": list(factor.amr),
        "phishing_resistant": factor.phishing_resistant,
        "device_bound": factor.device_bound,
        "user_verified": factor.user_verified,
    }


@dataclass(frozen=True, slots=True)
class Assurance:
    acr: str
    amr: tuple[str, ...]  # sorted, de-duplicated
    categories: tuple[Category, ...]  # sorted, de-duplicated


def _categories(factor: VerifiedFactor) -> set[Category]:
    props = CATALOG[factor.method]
    if not props.counts_as_factor:
        return set()
    found = {props.category}
    if props.multi_factor_capable and factor.user_verified:
        biometric = any(value in _BIOMETRIC_AMR for value in factor.amr)
        found.add(Category.INHERENCE if biometric else Category.KNOWLEDGE)
    return found


def _amr(factor: VerifiedFactor) -> set[str]:
    props = CATALOG[factor.method]
    found = set(props.amr)
    if props.multi_factor_capable:
        found.add(_DEVICE_BOUND_KEY if factor.device_bound else _SYNCED_KEY)
        if factor.user_verified:
            found |= (set(factor.amr) & _BIOMETRIC_AMR) or {_USER_VERIFIED}
    return found


def _is_hardware_bound(factor: VerifiedFactor) -> bool:
    # Flags count only for methods the catalog says can carry them (no TOTP "aal3").
    props = CATALOG[factor.method]
    return (
        props.phishing_resistant
        and props.multi_factor_capable
        and factor.phishing_resistant
        and factor.device_bound
    )


def compute_assurance(factors: Sequence[VerifiedFactor]) -> Assurance:
    """The ``acr``/``amr`` that ``factors`` together reach.

    Raises ``ValueError`` for an empty sequence, or one where nothing counts as a factor
    (a security question alone): no factor is no authentication.
    """
    if not factors:
        raise ValueError("assurance needs at least one verified factor")
    categories: set[Category] = set()
    amr: set[str] = set()
    for factor in factors:
        categories |= _categories(factor)
        amr |= _amr(factor)
    if not categories:
        raise ValueError("assurance needs at least one verified factor that counts")
    if len(categories) >= 2 and any(_is_hardware_bound(f) for f in factors):
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
