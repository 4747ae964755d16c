"""What ``decide`` answers, and how an answer that is not ALLOW becomes an error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from bastion.errors import AuthorizationError, BastionError, Conflict, StepUpRequired


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    STEP_UP = "step_up"


def collection_matches(pattern: str, collection: str) -> bool:
    """``docs`` matches only ``docs``; ``docs-*`` matches every name starting ``docs-``."""
    if pattern.endswith("*"):
        return collection.startswith(pattern[:-1])
    return pattern == collection


@dataclass(frozen=True)
class Decision:
    effect: Effect
    reason: str  # a sentence for humans (problem+json detail); never a secret
    required_acr: str | None = None
    max_age: int | None = None
    # Stable snake_case reason for audit events and tests: allowed, unknown_action,
    # unauthenticated, restricted_token, other_tenant, installation_only, not_self_service,
    # missing_permission, beyond_own_roles, last_admin, step_up_unavailable,
    # no_suitable_factor, service_account_assurance, insufficient_acr,
    # authentication_too_old.
    code: str = "allowed"
    action: str = ""
    # ALLOW of a listing through narrowed grants: the collection patterns the caller may see.
    # None: not limited.
    collections: tuple[str, ...] | None = None
    # ALLOW of an ``every_tenant`` listing for an installation admin: every tenant.
    every_tenant: bool = False

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW

    def covers(self, collection: str) -> bool:
        """Whether an allowed listing may show ``collection`` (filter for narrowed grants)."""
        if not self.allowed:
            return False
        return self.collections is None or any(
            collection_matches(pattern, collection) for pattern in self.collections
        )


# DENY codes answered with their own problem code (API.md), or as a conflict with the
# state of the installation rather than a missing right. Any other DENY is a 403
# ``forbidden`` whose ``reason`` is the decision's code.
DENIALS: Mapping[str, tuple[type[BastionError], str]] = MappingProxyType(
    {
        "last_admin": (Conflict, "last_admin"),
        "step_up_unavailable": (AuthorizationError, "step_up_unavailable"),
        "no_suitable_factor": (AuthorizationError, "no_suitable_factor"),
    }
)


def enforce(decision: Decision) -> Decision:
    """Return an ALLOW decision; raise ``StepUpRequired`` (401), ``AuthorizationError``
    (403) or, for ``DENIALS``, the error registered there."""
    if decision.effect is Effect.ALLOW:
        return decision
    if decision.effect is Effect.STEP_UP:
        raise StepUpRequired(
            decision.reason, acr=decision.required_acr or "aal2", max_age=decision.max_age
        )
    error, code = DENIALS.get(decision.code, (AuthorizationError, "forbidden"))
    if error is AuthorizationError:
        raise AuthorizationError(
            decision.reason, code=code, reason=decision.code, action=decision.action
        )
    raise error(decision.reason, code=code)
