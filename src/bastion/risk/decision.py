"""From reasons to a decision, and from a decision to what a login must ask for.

``decide`` adds the weights into a score, maps the score through the thresholds, and
raises the outcome to the highest *floor* among the reasons: a reason with a floor cannot
be outweighed (a blocked network stays denied from a recognised device on a trusted
network). ``login_requirement`` then combines the outcome with the policy's own minimum;
it only ever adds to that minimum, never takes from it (the invariant the property test
in tests/unit/test_risk_invariant.py checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bastion.factors.catalog import CATALOG
from bastion.risk.geo import Location
from bastion.risk.policy import Thresholds
from bastion.risk.reasons import Contribution, Level, Outcome

__all__ = [
    "ACR_ORDER",
    "LoginRequirement",
    "RiskDecision",
    "allowed_methods",
    "decide",
    "login_requirement",
]

Context = Literal["login", "session"]
# NIST SP 800-63B levels, weakest first (the same order as authn.assurance.ACR_VALUES).
ACR_ORDER: tuple[str, ...] = ("aal1", "aal2", "aal3")
_OUTCOME_ACR = {
    Outcome.ALLOW: "aal1",
    Outcome.SECOND_FACTOR: "aal2",
    Outcome.PHISHING_RESISTANT: "aal2",  # + only phishing-resistant methods
    Outcome.DENY: "aal3",  # never reached: a denial asks for nothing
}
_PHISHING_RESISTANT = frozenset(
    method.value for method, props in CATALOG.items() if props.phishing_resistant
)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """A scored attempt: the coarse level for the client, everything else for audit."""

    context: Context
    score: int
    outcome: Outcome
    reasons: tuple[Contribution, ...]
    location: Location
    device_id: str | None = None  # the recognised remembered device, if any

    @property
    def level(self) -> Level:
        return self.outcome.level

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code for reason in self.reasons)

    def has(self, code: str) -> bool:
        return any(reason.code == code for reason in self.reasons)

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready copy (for a login transaction's ``context``; ``from_record``)."""
        where = self.location
        return {
            "context": self.context,
            "score": self.score,
            "outcome": self.outcome.label,
            "reasons": [{**r.as_audit(), "floor": r.floor.label} for r in self.reasons],
            "location": [where.country, where.latitude, where.longitude, where.radius_km,
                         where.local],
            "device_id": self.device_id,
        }  # fmt: skip

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RiskDecision:
        """The decision ``as_record`` wrote (a ``KeyError``/``ValueError`` if it is not one)."""
        reasons = []
        for item in record["reasons"]:
            detail = {k: v for k, v in item.items() if k not in ("reason", "weight", "floor")}
            reasons.append(
                Contribution(
                    str(item["reason"]),
                    int(item["weight"]),
                    Outcome.from_label(item["floor"]),
                    detail,
                )
            )
        country, latitude, longitude, radius, local = record["location"]
        context = record["context"]
        if context not in ("login", "session"):
            raise ValueError("not a risk decision record")
        return cls(
            context,
            int(record["score"]),
            Outcome.from_label(record["outcome"]),
            tuple(reasons),
            Location(country, latitude, longitude, float(radius), bool(local)),
            record["device_id"],
        )

    def audit_details(self) -> dict[str, Any]:
        """``risk_level``, ``risk_score``, ``risk_reasons`` for the attempt's audit event
        (registered detail keys of ``login.*``; no secret, no typed username)."""
        return {
            "risk_level": self.level.value,
            "risk_score": self.score,
            "risk_reasons": [reason.as_audit() for reason in self.reasons],
        }


def decide(
    reasons: Sequence[Contribution],
    thresholds: Thresholds,
    *,
    context: Context,
    location: Location,
    device_id: str | None = None,
) -> RiskDecision:
    score = sum(reason.weight for reason in reasons)
    floor = max((reason.floor for reason in reasons), default=Outcome.ALLOW)
    outcome = max(thresholds.outcome(score), floor)
    return RiskDecision(context, score, outcome, tuple(reasons), location, device_id)


@dataclass(frozen=True, slots=True)
class LoginRequirement:
    """What the login transaction must reach, given the policy's minimum and the risk.

    - ``deny``: fail exactly like a wrong password.
    - ``acr``: at least the policy's minimum (``aal2`` when MFA is required).
    - ``phishing_resistant``: offer and accept only phishing-resistant methods (WebAuthn).
    - ``remembered_device_counts``: the recognised device may be the possession factor
      (only on a low-risk login; any raised requirement needs an interactive factor).
    - ``enrollment_allowed``: a user without a second factor may get the restricted
      enrolment token (only on a low-risk login: a stolen password from a risky place must
      not enrol the thief's authenticator).
    """

    deny: bool
    acr: str
    phishing_resistant: bool
    remembered_device_counts: bool
    enrollment_allowed: bool


def _rank(acr: str) -> int:
    if acr not in ACR_ORDER:
        raise ValueError(f"unknown acr {acr!r}")  # a typo must not lower anything
    return ACR_ORDER.index(acr)


def login_requirement(*, minimum_acr: str, decision: RiskDecision) -> LoginRequirement:
    """The policy's ``minimum_acr`` raised by the decision, never lowered."""
    outcome = decision.outcome
    acr = max(minimum_acr, _OUTCOME_ACR[outcome], key=_rank)
    low = outcome is Outcome.ALLOW
    return LoginRequirement(
        deny=outcome is Outcome.DENY,
        acr=acr,
        phishing_resistant=outcome >= Outcome.PHISHING_RESISTANT,
        remembered_device_counts=low and decision.device_id is not None,
        enrollment_allowed=low,
    )


def allowed_methods(requirement: LoginRequirement, enrolled: Sequence[str]) -> tuple[str, ...]:
    """The user's enrolled second-factor methods this login may offer (in their order).

    Empty when the requirement asks for a phishing-resistant factor the user does not
    have: the login must then be denied (as a wrong password), not downgraded.
    """
    if requirement.deny:
        return ()
    if not requirement.phishing_resistant:
        return tuple(enrolled)
    return tuple(method for method in enrolled if method in _PHISHING_RESISTANT)
