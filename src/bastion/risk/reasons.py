"""What the risk engine can say: outcomes, levels, and the registry of reason codes.

Every signal contributes zero or more *reasons*. A reason has a stable machine code, a
weight (added to the score; negative weights are evidence of a known context) and a
*floor*: an outcome the attempt gets whatever the score (a blocked network is denied even
from a recognised device). The registry below is data: the policy validates overrides
against it, the engine reads it, and docs/risk.md is generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType

__all__ = [
    "REASONS",
    "Contribution",
    "Detail",
    "Level",
    "Outcome",
    "ReasonSpec",
    "Signal",
]

Detail = Mapping[str, str | int | float | bool | None]


class Outcome(IntEnum):
    """What an attempt needs, weakest first (so ``max`` raises a requirement)."""

    ALLOW = 0  # the policy's own requirement, nothing more
    SECOND_FACTOR = 1  # an interactive second factor (a remembered device is not enough)
    PHISHING_RESISTANT = 2  # a phishing-resistant factor (WebAuthn)
    DENY = 3  # refused (a login: exactly like a wrong password)

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Outcome:
        """The outcome named ``label``; raises ``KeyError`` for anything else."""
        for outcome in cls:
            if outcome.label == label:
                return outcome
        raise KeyError(label)

    @property
    def level(self) -> Level:
        return _LEVELS[self]

    @property
    def step_up_acr(self) -> str | None:
        """The ``acr_values`` of an RFC 9470 challenge for this outcome (None: no step-up).

        A challenge can only name an assurance level; ``aal3`` is the one that implies a
        phishing-resistant authenticator (NIST SP 800-63B §4.3).
        """
        return _STEP_UP_ACR.get(self)


class Level(StrEnum):
    """The coarse level a client is shown (the reasons go to audit only)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


_LEVELS = {
    Outcome.ALLOW: Level.LOW,
    Outcome.SECOND_FACTOR: Level.MEDIUM,
    Outcome.PHISHING_RESISTANT: Level.HIGH,
    Outcome.DENY: Level.HIGH,
}
_STEP_UP_ACR = {Outcome.SECOND_FACTOR: "aal2", Outcome.PHISHING_RESISTANT: "aal3"}


class Signal(StrEnum):
    DEVICE = "device"
    NETWORK = "network"
    GEO = "geolocation"
    TRAVEL = "travel"
    TIME = "time"
    VELOCITY = "velocity"
    SESSION = "session"
    VOLUME = "volume"


@dataclass(frozen=True, slots=True)
class ReasonSpec:
    code: str
    signal: Signal
    weight: int
    floor: Outcome
    description: str


@dataclass(frozen=True, slots=True)
class Contribution:
    """One reason found for one attempt: its code, the weight and floor that policy gave
    it, and a few facts for the audit event (never a secret)."""

    code: str
    weight: int
    floor: Outcome = Outcome.ALLOW
    detail: Detail = field(default_factory=dict)

    def as_audit(self) -> dict[str, str | int | float | bool | None]:
        return {"reason": self.code, "weight": self.weight, **self.detail}


def _reason(code: str, signal: Signal, weight: int, floor: str, description: str) -> ReasonSpec:
    return ReasonSpec(code, signal, weight, Outcome.from_label(floor), description)


_SPECS = (
    # device
    _reason("device_recognised", Signal.DEVICE, -20, "allow",
            "A valid remembered-device credential of this user was presented."),
    _reason("device_unknown", Signal.DEVICE, 15, "allow",
            "No remembered-device credential, or one that is expired or not this user's."),
    _reason("device_revoked", Signal.DEVICE, 50, "second_factor",
            "A remembered-device credential that was revoked (e.g. a lost laptop)."),
    # network
    _reason("network_trusted", Signal.NETWORK, -20, "allow",
            "The address is in a trusted network (office, VPN)."),
    _reason("network_blocked", Signal.NETWORK, 0, "deny",
            "The address is in a blocked network."),
    _reason("network_anonymiser", Signal.NETWORK, 40, "allow",
            "The address is in the anonymiser / hosting-provider list."),
    _reason("network_local", Signal.NETWORK, 0, "allow",
            "A private or loopback address (no location)."),
    _reason("address_reputation", Signal.NETWORK, 20, "allow",
            "Many failed sign-ins came from this address recently (decaying count)."),
    # geolocation
    _reason("country_new", Signal.GEO, 25, "allow",
            "A country this user never signed in from."),
    _reason("country_unknown", Signal.GEO, 10, "allow",
            "A public address the GeoIP database cannot place."),
    _reason("country_blocked", Signal.GEO, 0, "deny", "A country on the block list."),
    _reason("country_not_allowed", Signal.GEO, 0, "deny",
            "A country (or an unplaceable address) outside a non-empty allow list."),
    # travel
    _reason("impossible_travel", Signal.TRAVEL, 70, "phishing_resistant",
            "Faster than the policy's max speed from a recent sign-in or use."),
    # time of access
    _reason("hours_outside_role", Signal.TIME, 20, "second_factor",
            "Outside the allowed hours of one of the user's roles."),
    _reason("hours_unusual", Signal.TIME, 15, "allow",
            "Far from every hour this user usually signs in at."),
    # velocity and behaviour
    _reason("user_failures", Signal.VELOCITY, 15, "allow",
            "Several failed sign-ins of this user in the velocity window."),
    _reason("address_spraying", Signal.VELOCITY, 50, "phishing_resistant",
            "This address tried many usernames in the velocity window."),
    _reason("first_login", Signal.VELOCITY, 10, "allow",
            "This user never signed in successfully before."),
    # continuous evaluation of a session
    _reason("session_address_changed", Signal.SESSION, 5, "allow",
            "The session is used from another network than it signed in from."),
    _reason("session_country_changed", Signal.SESSION, 40, "second_factor",
            "The session is used from another country than it signed in from."),
    # data-plane volume against the principal's own baseline
    _reason("volume_query_burst", Signal.VOLUME, 40, "second_factor",
            "Search/query results per minute far above this principal's baseline."),
    _reason("volume_scroll_burst", Signal.VOLUME, 40, "second_factor",
            "Scrolled points per minute far above this principal's baseline."),
    _reason("volume_export_burst", Signal.VOLUME, 40, "second_factor",
            "Exported points per minute far above this principal's baseline."),
)  # fmt: skip

REASONS: Mapping[str, ReasonSpec] = MappingProxyType({spec.code: spec for spec in _SPECS})
