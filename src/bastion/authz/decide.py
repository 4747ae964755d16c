"""The one authorisation door: ``decide(principal, action, resource)``.

Pure: no I/O, no clock (``now`` is passed in). Every rule that allows, denies or asks
for a step-up is here, read from data: the permission registry (``authz.permissions``),
the roles, the tenant's policy (``Requirement`` per action) and the attributes of the
resource (``authz.resource``). The checks run in this order and the first that fails
decides (fail closed):

1. the action is registered (an unknown action is denied, never allowed);
2. the principal is authenticated; an ``anonymous`` principal exists only when the
   operator enabled read-only anonymous mode, and may only use ``read`` permissions of
   ``collection`` scope in its tenant;
3. a permission that *proves a factor* (``me.step_up``) is for users with a full
   session only (``step_up_unavailable``);
4. a restricted (``enrollment``) token may only use ``ENROLLMENT_ACTIONS``, whatever its
   assurance: it exists so that a user without a factor can enroll one (the rule of
   step 8 still applies to adding a factor);
5. tenant: a principal acts in its own tenant only, except that grants held in the
   ``default`` tenant cover ``tenant``/``installation`` scoped permissions in every
   tenant (API.md "Admin": an admin of ``default`` administers the installation; such an
   admin's ``every_tenant`` listing covers every tenant); ``installation`` permissions
   need a principal of the ``default`` tenant;
6. permission: ``self`` permissions belong to every user (service accounts: ``me.read``);
   others come from the principal's grants in its own tenant. A grant narrowed to
   collections gives only ``collection`` scoped permissions, and only on a matching
   collection (exact name or ``prefix*``); for a listing (``resource.collection`` is
   ``None``) it allows the call and ``Decision.collections`` holds the patterns the
   route must filter by;
7. the resource's state: no role it holds or would hold may reach beyond the caller's
   own tenant-wide permissions (``beyond_own_roles``), no change may leave a tenant
   without an active admin (``last_admin``), and a step-up needs an enrolled factor able
   to reach the level asked for (``no_suitable_factor``);
8. assurance: service accounts (API keys, ``aal1``, no interactive MFA) may perform only
   the policy's ``service_account_actions``, anything else is denied; users need the
   policy's ``acr`` and an ``auth_time`` within ``max_age``, else ``STEP_UP``
   (RFC 9470 challenge with the required ``acr`` and ``max_age``). A change of how the
   account signs in (``changes_sign_in``: a factor enrolled, activated or removed, new
   recovery codes, a new password) needs a recent proof (its ``max_age``) and, once the
   account has an active factor, at least ``aal2``, unless the enrolment session that
   set up every active factor is finishing that set-up (issue 11.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from bastion.authz.decision import Decision, Effect, collection_matches
from bastion.authz.permissions import PERMISSIONS, Permission
from bastion.authz.policy import Policy
from bastion.authz.resource import Account, Resource
from bastion.authz.roles import Role, can_grant, role_named
from bastion.domain import AAL2, Grant, Principal, Requirement, acr_rank, acr_satisfies

DEFAULT_TENANT = "default"

# What a restricted ``enrollment`` token may do (API.md: GET /me, /me/factors…,
# /me/recovery-codes). Removing a factor needs step-up, which such a token cannot do.
ENROLLMENT_ACTIONS: frozenset[str] = frozenset({"me.read", "me.factors.read", "me.factors.enroll"})
# The self-service actions a service account has (it has no factors or sessions).
SERVICE_ACCOUNT_SELF_ACTIONS: frozenset[str] = frozenset({"me.read"})

_NO_CUSTOM_ROLES: Mapping[str, Role] = MappingProxyType({})


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
    if item.proves_factor and (principal.kind != "user" or principal.restricted is not None):
        return _deny(
            action,
            "step_up_unavailable",
            "Only a signed-in user with an active factor can step up.",
        )

    if principal.restricted is not None:
        if (
            principal.restricted == "enrollment"
            and principal.kind == "user"
            and action in ENROLLMENT_ACTIONS
            and resource.tenant_id == principal.tenant_id
        ):
            return _assurance(principal, item, resource, policy.requirement(action), now)
        return _deny(
            action,
            "restricted_token",
            "This token may only be used to enroll a second factor; "
            "sign in again once a factor is active.",
        )

    collections: tuple[str, ...] | None = None
    every_tenant = False
    if item.scope == "self":
        if resource.tenant_id != principal.tenant_id:
            return _deny(action, "other_tenant", "The resource is outside your tenant.")
        if principal.kind == "service_account" and action not in SERVICE_ACCOUNT_SELF_ACTIONS:
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
        every_tenant = resource.every_tenant and installation_admin and item.scope != "collection"

    refused = _state_refusal(principal, item, resource, custom_roles)
    if refused is not None:
        return refused
    requirement = policy.requirement(action)
    if principal.kind == "service_account":
        if action in policy.service_account_actions or action in SERVICE_ACCOUNT_SELF_ACTIONS:
            return Decision(
                Effect.ALLOW,
                "Allowed.",
                action=action,
                collections=collections,
                every_tenant=every_tenant,
            )
        return _deny(
            action,
            "service_account_assurance",
            f"Service accounts cannot perform {action}: it requires {requirement.acr} "
            "(interactive multi-factor authentication).",
        )
    decision = _assurance(principal, item, resource, requirement, now)
    if not decision.allowed:
        return decision
    return Decision(
        Effect.ALLOW, "Allowed.", action=action, collections=collections, every_tenant=every_tenant
    )


def _state_refusal(
    principal: Principal, item: Permission, resource: Resource, custom_roles: Mapping[str, Role]
) -> Decision | None:
    """Step 7: what the resource's attributes forbid, whatever the caller's assurance."""
    action = item.name
    if resource.roles:
        ceiling = granted_permissions(principal, custom_roles=custom_roles)
        beyond = sorted({role.name for role in resource.roles if not can_grant(ceiling, role)})
        if beyond:
            return _deny(
                action,
                "beyond_own_roles",
                f"You cannot grant or manage roles beyond your own: {', '.join(beyond)}.",
            )
    if resource.removes_last_admin:
        return _deny(
            action,
            "last_admin",
            "This is the last active admin of the tenant; make another user admin first.",
        )
    if item.proves_factor and (resource.account is None or not resource.account.step_up_methods):
        return _deny(
            action,
            "no_suitable_factor",
            "No authenticator that can reach the level asked for is enrolled; "
            "enrol one under /me/factors.",
        )
    return None


def _assurance(
    principal: Principal,
    item: Permission,
    resource: Resource,
    requirement: Requirement,
    now: datetime,
) -> Decision:
    """Step 8 for a user: the acr and freshness the action needs (STEP_UP otherwise)."""
    action = item.name
    if item.changes_sign_in and _guarded_account(principal, resource.account):
        if acr_rank(requirement.acr) < acr_rank(AAL2):
            requirement = Requirement(AAL2, requirement.max_age)
        if not acr_satisfies(principal.acr, requirement.acr) or principal.restricted is not None:
            return Decision(
                Effect.STEP_UP,
                "Changing how this account signs in needs a recent two-factor sign-in.",
                required_acr=requirement.acr,
                max_age=requirement.max_age,
                code="insufficient_acr",
                action=action,
            )
    if principal.restricted is not None:  # an enrolment session: its acr is not the question
        return Decision(Effect.ALLOW, "Allowed for enrollment.", action=action)
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
    return Decision(Effect.ALLOW, "Allowed.", action=action)


def _guarded_account(principal: Principal, account: Account | None) -> bool:
    """Whether the account already holds a factor this session did not set up (unknown:
    guarded, fail closed)."""
    if account is None:
        return True
    if not account.has_active_factor:
        return False
    return not (principal.restricted is not None and account.set_up_by_this_session)


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
    """The permissions the principal holds on its whole tenant (the ceiling of what it grants)."""
    result: frozenset[str] = frozenset()
    for grant in _home_grants(principal):
        found = role_named(grant.role, custom_roles)
        if found is not None and grant.collections is None:
            result |= found.permissions
    return result
