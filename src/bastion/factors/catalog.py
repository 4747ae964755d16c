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

__all__ = ["CATALOG", "PRIVATE_AMR", "Category", "Method", "MethodProperties", "Rating"]

# ``amr`` values RFC 8176 does not register, chosen by Bastion where no registered value
# says what the method is (OpenID Connect Core §2: registered values SHOULD be used).
# Each contains an underscore, so none can collide with a registered (short) value.
PRIVATE_AMR = frozenset({"recovery_code"})


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
    - ``amr``: the RFC 8176 values every use of the method reports. For a
      multi-factor-capable authenticator (WebAuthn), ``authn.assurance`` adds what its
      flags earn: ``hwk`` (device-bound) or ``swk`` (synced), and ``pin`` for UV.
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
    - ``counts_as_factor``: SP 800-63B recognises it as an authenticator. When ``False``
      (knowledge-based questions) it reports its ``amr`` but adds no category.
    - ``guessable``: what is presented is a secret the user types (a code, an answer), so an
      online attacker can guess it: failures are counted per account and per method and
      delayed (``authn.guessing``). A cryptographic assertion (WebAuthn, a push approval
      signed by the device, a remembered-device credential) cannot be guessed: a failure
      is audited, not counted.
    """

    label: str
    category: Category
    amr: tuple[str, ...]
    phishing_resistant: bool
    sim_swap_exposed: bool
    server_side_secret: bool
    works_offline: bool
    rating: Rating
    guessable: bool
    multi_factor_capable: bool = False
    counts_as_factor: bool = True


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
            guessable=True,
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
            guessable=True,
        ),
        Method.RECOVERY_CODE: MethodProperties(
            # NIST look-up secret: something you have (the printed sheet). RFC 8176 has no
            # value for it, and "otp" would hide a recovery (the user lost a factor) among
            # TOTP sign-ins: it reports Bastion's own "recovery_code" (PRIVATE_AMR).
            label="Recovery code",
            category=Category.POSSESSION,
            amr=("recovery_code",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,  # SHA-256 hashes of the codes
            works_offline=True,
            rating=Rating.STANDARD,
            guessable=True,
        ),
        Method.WEBAUTHN: MethodProperties(
            label="Security key or passkey (WebAuthn)",
            category=Category.POSSESSION,
            # "user": the UP flag, a test of user presence (refused when clear). The flags
            # add "hwk" (BE=0) or "swk" (BE=1), and "pin" for UV (authn.assurance).
            amr=("user",),
            phishing_resistant=True,
            sim_swap_exposed=False,
            server_side_secret=False,  # public key only
            works_offline=True,
            rating=Rating.STRONG,
            guessable=False,
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
            guessable=False,
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
            guessable=True,
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
            guessable=True,
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
            guessable=True,
        ),
        Method.SECURITY_QUESTION: MethodProperties(
            # SP 800-63B forbids knowledge-based authentication as an authenticator:
            # it never adds a category (not even next to a TOTP or a security key).
            label="Security question",
            category=Category.KNOWLEDGE,
            amr=("kba",),
            phishing_resistant=False,
            sim_swap_exposed=False,
            server_side_secret=True,
            works_offline=True,
            rating=Rating.WEAK,
            guessable=True,
            counts_as_factor=False,
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
            guessable=False,
        ),
    }
)
