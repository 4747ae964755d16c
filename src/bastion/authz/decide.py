"""The one authorisation door: ``decide(principal, action, resource)``.

Pure: no I/O, no clock (``now`` is passed in). The checks run in this order and the
first that fails decides (fail closed):

1. the action is registered (an unknown action is denied, never allowed);
2. the principal is authenticated; an ``anonymous`` principal exists only when the
   operator enabled read-only anonymous mode, and may only use ``read`` permissions of
   ``collection`` scope in its tenant;
3. a restricted (``enrollment``) token may only use ``ENROLLMENT_ACTIONS``, whatever its
   assurance: it exists so that a user without a factor can enroll one;
4. tenant: a principal acts in its own tenant only, except that grants held in the
   ``default`` tenant cover ``tenant``/``installation`` scoped permissions in every
   tenant (API.md "Admin": an admin of ``default`` administers the installation);
   ``installation`` permissions need a principal of the ``default`` tenant;
5. permission: ``self`` permissions belong to every user (service accounts: ``me.read``);
   others come from the principal's grants in its own tenant. A grant narrowed to
   collections gives only ``collection`` scoped permissions, and only on a matching
   collection (exact name or ``prefix*``); for a listing (``resource.collection`` is
   ``None``) it allows the call and ``Decision.collections`` holds the patterns the
   route must filter by;
6. assurance: service accounts (API keys, ``aal1``, no interactive MFA) may perform only
   the policy's ``service_account_actions``, anything else is denied; users need the
   policy's ``acr`` and an ``auth_time`` within ``max_age``, else ``STEP_UP``
   (RFC 9470 challenge with the required ``acr`` and ``max_age``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from bastion.authz.permissions import PERMISSIONS, Permission
from bastion.authz.policy import Policy
from bastion.authz.roles import Role, role_named
from bastion.domain import Grant, Principal, acr_satisfies
from bastion.errors import AuthorizationError, StepUpRequired

DEFAULT_TENANT = "default"

# What a restricted ``enrollment`` token may do (API.md: GET /me, /me/factors…,
# /me/recovery-codes). Removing a factor needs step-up, which such a token cannot do.
ENROLLMENT_ACTIONS: frozenset[str] = frozenset({"me.read", "me.factors.enroll"})
# The self-service actions a service account has (it has no factors or sessions).
SERVICE_ACCOUNT_SELF_ACTIONS: frozenset[str] = frozenset({"me.read"})

_NO_CUSTOM_ROLES: Mapping[str, Role] = MappingProxyType({})


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    STEP_UP = "step_up"


@dataclass(frozen=True)
class Resource:
    """What an action is about: a tenant and, for the data plane, a collection."""

    tenant_id: str
    collection: str | None = None


@dataclass(frozen=True)
class Decision:
    effect: Effect
    reason: str  # a sentence for humans (problem+json detail); never a secret
    required_acr: str | None = None
    max_age: int | None = None
    # Stable snake_case reason for audit events and tests: allowed, unknown_action,
    # unauthenticated, restricted_token, other_tenant, installation_only, not_self_service,
    # missing_permission, service_account_assurance, insufficient_acr, authentication_too_old.
    code: str = "allowed"
    action: str = ""
    # ALLOW of a listing through narrowed grants: the collection patterns the caller may see.
    # None: not limited.
    collections: tuple[str, ...] | None = None

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


def collection_matches(pattern: str, collection: str) -> bool:
    """``docs`` matches only ``docs``; ``docs-*`` matches every name starting ``docs-``."""
    if pattern.endswith("*"):
        return collection.startswith(pattern[:-1])
    return pattern == collection


def _deny(action: str, code: str, reason: str) -> Decision:
    return Decision(Effect.DENY, reason, code=code, action=action)


def decide(
    principal: Principal,
    action: str,
    resource: Resource,
    *,
    policy: Policy,
    now: datetime,
    custom_roles: Mapping[str, Role] = _NO_CUSTOM_ROLES,
) -> Decision:
    """Allow, deny or ask for step-up; see the module docstring for the order of checks."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC 'now'")
    item = PERMISSIONS.get(action)
    if item is None:
        return _deny(action, "unknown_action", f"Unknown action {action!r}.")
    if principal.kind == "anonymous":
        if (
            item.kind == "read"
            and item.scope == "collection"
            and (resource.tenant_id == principal.tenant_id)
        ):
            return Decision(Effect.ALLOW, "Allowed in read-only anonymous mode.", action=action)
        return _deny(action, "unauthenticated", "Authentication is required.")
    if principal.kind != "user" and principal.kind != "service_account":
        return _deny(action, "unauthenticated", "Authentication is required.")

    if principal.restricted is not None:
        if (
            principal.restricted == "enrollment"
            and principal.kind == "user"
            and action in ENROLLMENT_ACTIONS
            and resource.tenant_id == principal.tenant_id
        ):
            return Decision(Effect.ALLOW, "Allowed for enrollment.", action=action)
        return _deny(
            action,
            "restricted_token",
            "This token may only be used to enroll a second factor; "
            "sign in again once a factor is active.",
        )

    collections: tuple[str, ...] | None = None
    if item.scope == "self":
        if resource.tenant_id != principal.tenant_id:
            return _deny(action, "other_tenant", "The resource is outside your tenant.")
        if principal.kind == "service_account":
            if action in SERVICE_ACCOUNT_SELF_ACTIONS:
                return Decision(Effect.ALLOW, "Allowed.", action=action)
            return _deny(action, "not_self_service", f"Service accounts cannot perform {action}.")
    else:
        cross_tenant = resource.tenant_id != principal.tenant_id
        installation_admin = principal.tenant_name == DEFAULT_TENANT
        if cross_tenant and not (installation_admin and item.scope != "collection"):
            return _deny(action, "other_tenant", "The resource is outside your tenant.")
        if item.scope == "installation" and not installation_admin:
            return _deny(
                action,
                "installation_only",
                f"{action} is reserved to administrators of the default tenant.",
            )
        granted, collections = _granted(principal, item, resource, custom_roles)
        if not granted:
            return _deny(action, "missing_permission", f"Your roles do not grant {action}.")

    requirement = policy.requirement(action)
    if principal.kind == "service_account":
        if action in policy.service_account_actions:
            return Decision(Effect.ALLOW, "Allowed.", action=action, collections=collections)
        return _deny(
            action,
            "service_account_assurance",
            f"Service accounts cannot perform {action}: it requires {requirement.acr} "
            "(interactive multi-factor authentication).",
        )
    if not acr_satisfies(principal.acr, requirement.acr):
        return Decision(
            Effect.STEP_UP,
            f"{action} requires {requirement.acr} authentication.",
            required_acr=requirement.acr,
            max_age=requirement.max_age,
            code="insufficient_acr",
            action=action,
        )
    if requirement.max_age is not None and (
        principal.auth_time is None
        or (now - principal.auth_time).total_seconds() > requirement.max_age
    ):
        return Decision(
            Effect.STEP_UP,
            f"{action} requires an authentication within the last {requirement.max_age} seconds.",
            required_acr=requirement.acr,
            max_age=requirement.max_age,
            code="authentication_too_old",
            action=action,
        )
    return Decision(Effect.ALLOW, "Allowed.", action=action, collections=collections)


def _granted(
    principal: Principal, item: Permission, resource: Resource, custom_roles: Mapping[str, Role]
) -> tuple[bool, tuple[str, ...] | None]:
    """Whether a grant gives ``item`` on ``resource``; with the listing patterns if narrowed."""
    patterns: list[str] = []
    for grant in _home_grants(principal):
        found = role_named(grant.role, custom_roles)
        if found is None or item.name not in found.permissions:
            continue  # an unknown (deleted) role grants nothing
        if grant.collections is None:
            return True, None
        if item.scope != "collection":
            continue  # a grant narrowed to collections never gives tenant-wide rights
        if resource.collection is None:
            patterns.extend(grant.collections)
        elif any(collection_matches(p, resource.collection) for p in grant.collections):
            return True, None
    if patterns:
        return True, tuple(dict.fromkeys(patterns))
    return False, None


def _home_grants(principal: Principal) -> tuple[Grant, ...]:
    # Grants recorded for another tenant than the principal's are ignored (fail closed).
    return tuple(grant for grant in principal.grants if grant.tenant_id == principal.tenant_id)


def granted_permissions(
    principal: Principal, *, custom_roles: Mapping[str, Role] = _NO_CUSTOM_ROLES
) -> frozenset[str]:
    """The permissions the principal holds on its whole tenant (for ``roles.can_grant``)."""
    result: frozenset[str] = frozenset()
    for grant in _home_grants(principal):
        found = role_named(grant.role, custom_roles)
        if found is not None and grant.collections is None:
            result |= found.permissions
    return result


def enforce(decision: Decision) -> Decision:
    """Return an ALLOW decision; raise ``StepUpRequired`` (401) or ``AuthorizationError`` (403)."""
    if decision.effect is Effect.ALLOW:
        return decision
    if decision.effect is Effect.STEP_UP:
        raise StepUpRequired(
            decision.reason, acr=decision.required_acr or "aal2", max_age=decision.max_age
        )
    raise AuthorizationError(decision.reason, reason=decision.code, action=decision.action)


def authorize(
    principal: Principal,
    action: str,
    resource: Resource,
    *,
    policy: Policy,
    now: datetime,
    custom_roles: Mapping[str, Role] = _NO_CUSTOM_ROLES,
) -> Decision:
    """``enforce(decide(...))``: the allowed decision, or the matching error raised."""
    return enforce(
        decide(principal, action, resource, policy=policy, now=now, custom_roles=custom_roles)
    )
