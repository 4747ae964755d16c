"""What each authentication method is: registered data that policy, assurance and docs read.

Categories follow NIST SP 800-63B (something you know / have / are); ``amr`` values are
RFC 8176 Authentication Method Reference values. Adding a method means adding a row here,
not a branch elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = ["CATALOG", "Category", "Method", "MethodProperties", "Rating"]


class Method(StrEnum):
    PASSWORD = "password"  # noqa: S105 (a method name, not a secret)
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"
    WEBAUTHN = "webauthn"
    PUSH = "push"
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    SECURITY_QUESTION = "security_question"
    REMEMBERED_DEVICE = "remembered_device"


class Category(StrEnum):
    KNOWLEDGE = "knowledge"  # something you know
    POSSESSION = "possession"  # something you have
    INHERENCE = "inherence"  # something you are


class Rating(StrEnum):
    STRONG = "strong"
    STANDARD = "standard"
    WEAK = "weak"


@dataclass(frozen=True, slots=True)
class MethodProperties:
    """Properties of one authentication method.

    - ``category``: the NIST factor category the authenticator itself proves.
    - ``amr``: default RFC 8176 values; a verifier result may refine them (WebAuthn
      reports ``hwk``/``swk`` and ``user``/``pin`` from the authenticator's flags).
    - ``phishing_resistant``: bound to the relying party's origin (verifier-impersonation
      resistant, SP 800-63B §3.2.5); nothing the user can be tricked into typing elsewhere.
    - ``sim_swap_exposed``: delivered over the phone network, so a SIM swap or number
      port hands it to an attacker.
    - ``server_side_secret``: the server stores a shared secret or a hash of one (as opposed
      to only a public key), so a database breach is an offline-attack or replay risk.
    - ``works_offline``: usable when the user's device has no network or signal.
    - ``multi_factor_capable``: the authenticator can itself verify the user (PIN or
      biometric), so one use may prove two categories when it says it did.
    - ``rating``: how we present it to administrators (``weak`` = NIST "restricted"
      or disallowed as a sole second factor).
    """

    label: str
    category: Category
    amr: tuple[str, ...]
    phishing_resistant: bool
    sim_swap_exposed: bool
    server_side_secret: bool
    works_offline: bool
    rating: Rating
    multi_factor_capable: bool = False


CATALOG: Mapping[Method, MethodProperties] = MappingProxyType(
    {
        Method.PASSWORD: MethodProperties(
            label="Password",
            category=Category.KNOWLEDGE,
            amr=("pwd",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,  # argon2id hash
            works_offline=True,
            rating=Rating.STANDARD,
        ),
        Method.TOTP: MethodProperties(
            label="Authenticator app (TOTP)",
            category=Category.POSSESSION,
            amr=("otp",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,  # the seed, sealed with the master key
            works_offline=True,
            rating=Rating.STANDARD,
        ),
        Method.RECOVERY_CODE: MethodProperties(
            # NIST look-up secret: something you have (the printed sheet).
            label="Recovery code",
            category=Category.POSSESSION,
            amr=("otp",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,  # SHA-256 hashes of the codes
            works_offline=True,
            rating=Rating.STANDARD,
        ),
        Method.WEBAUTHN: MethodProperties(
            label="Security key or passkey (WebAuthn)",
            category=Category.POSSESSION,
            amr=("hwk",),  # the verifier reports hwk/swk and user/pin per credential
            phishing_resistant=True,
            sim_swap_exposed=False,
            server_side_secret=False,  # public key only
            works_offline=True,
            rating=Rating.STRONG,
            multi_factor_capable=True,
        ),
        Method.PUSH: MethodProperties(
            label="Push approval",
            category=Category.POSSESSION,
            amr=("swk",),  # a device-held key signs the approval
            phishing_resistant=False,  # the user may approve a login they did not start
            sim_swap_exposed=False,
            server_side_secret=False,
            works_offline=False,
            rating=Rating.STANDARD,
        ),
        Method.SMS: MethodProperties(
            label="Text message (SMS) code",
            category=Category.POSSESSION,
            amr=("sms",),
            phishing_resistant=False,
            sim_swap_exposed=True,
            server_side_secret=True,  # short-lived code hash
            works_offline=False,
            rating=Rating.WEAK,
        ),
        Method.VOICE: MethodProperties(
            label="Voice call code",
            category=Category.POSSESSION,
            amr=("tel",),
            phishing_resistant=False,
            sim_swap_exposed=True,
            server_side_secret=True,
            works_offline=False,
            rating=Rating.WEAK,
        ),
        Method.EMAIL: MethodProperties(
            # RFC 8176 has no e-mail value; "otp" is the closest registered one.
            label="E-mail code",
            category=Category.POSSESSION,
            amr=("otp",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,
            works_offline=False,
            rating=Rating.WEAK,
        ),
        Method.SECURITY_QUESTION: MethodProperties(
            # SP 800-63B forbids knowledge-based authentication as an authenticator:
            # it never adds a category beyond the password's.
            label="Security question",
            category=Category.KNOWLEDGE,
            amr=("kba",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,
            works_offline=True,
            rating=Rating.WEAK,
        ),
        Method.REMEMBERED_DEVICE: MethodProperties(
            # A long-lived, hashed, per-device credential set after a full MFA login.
            label="Remembered device",
            category=Category.POSSESSION,
            amr=("swk",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,
            works_offline=True,
            rating=Rating.STANDARD,
        ),
    }
)
