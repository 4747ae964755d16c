"""The permission registry: every action an endpoint may ask ``decide`` about.

Permissions are data (STYLE.md "Data, not branches, for policy"): a name, what it
covers, its kind, its *scope* (what a grant must cover for it to apply) and the
assurance the secure default policy asks for. Roles are sets of these names; the
policy (``authz.policy``) maps each name to a requirement; the privilege matrix
test and ``docs/permissions.md`` enumerate this registry.

Scopes:

- ``collection``: data-plane actions on one collection (or on "some collections"
  for listings). A grant narrowed to collections applies when the collection matches.
- ``tenant``: administration of one tenant. Only grants covering the whole tenant
  apply; an admin of the ``default`` tenant may exercise these in every tenant.
- ``installation``: administration of the installation itself (tenants). Only
  principals of the ``default`` tenant may hold them.
- ``self``: a user acting on their own account (``/me``). Every user holds these
  without a role; restricted (enrollment) tokens may use the ones listed in
  ``authz.decide.ENROLLMENT_ACTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from bastion.domain import ACR_VALUES

PermissionKind = Literal["read", "write", "admin"]
PermissionScope = Literal["collection", "tenant", "installation", "self"]


@dataclass(frozen=True)
class Permission:
    """One registered action and the assurance the default policy requires for it."""

    name: str
    description: str
    kind: PermissionKind
    scope: PermissionScope
    default_acr: str
    default_max_age: int | None = None
    # Raised to aal3 by the policy switch ``admin_requires_aal3`` and never below aal2.
    administrative: bool = False
    # Changes how the caller's own account signs in (adds, activates or removes a factor,
    # replaces the recovery codes, changes the password): it needs a recent proof (its
    # ``max_age``, which no policy may drop) with a factor the account already had, so at
    # least aal2 once the account has an active factor; the enrolment session that set
    # up every active factor may finish that set-up (``Resource.account``). A stale or
    # stolen token can never add the thief's authenticator and step up with it.
    changes_sign_in: bool = False
    # Proves a factor the caller holds (step-up): users only, not a restricted token,
    # and only with an enrolled factor able to reach the level asked for. Its own
    # requirement stays aal1 with no max_age (a step-up cannot need what it grants).
    proves_factor: bool = False

    @property
    def grantable(self) -> bool:
        """Whether a role may contain it (``self`` permissions belong to every user)."""
        return self.scope != "self"


_FIFTEEN_MINUTES = 900
_FIVE_MINUTES = 300


def _registry(*items: Permission) -> Mapping[str, Permission]:
    table: dict[str, Permission] = {}
    for item in items:
        if item.name in table:
            raise ValueError(f"permission {item.name} registered twice")
        if item.default_acr not in ACR_VALUES:
            raise ValueError(f"permission {item.name}: unknown acr {item.default_acr}")
        if item.kind == "admin" and not item.administrative:
            raise ValueError(f"permission {item.name}: admin permissions are administrative")
        if (item.changes_sign_in or item.proves_factor) and item.scope != "self":
            raise ValueError(f"permission {item.name}: factor rules apply to one's own account")
        if item.changes_sign_in and item.default_max_age is None:
            raise ValueError(f"permission {item.name}: a change of sign-in needs a max_age")
        table[item.name] = item
    return MappingProxyType(table)


PERMISSIONS: Mapping[str, Permission] = _registry(
    # Data plane: reads follow the login's level (aal1 is enough by default).
    Permission(
        "collections.read",
        "List collections, get a collection's description, check that it exists.",
        "read",
        "collection",
        "aal1",
    ),
    Permission(
        "points.read",
        "Retrieve points by id, scroll through points (in id order or by a payload key), "
        "count points.",
        "read",
        "collection",
        "aal1",
    ),
    Permission(
        "points.search",
        "Search and query points by vector, by point id or by examples (recommend, MMR) "
        "with payload filters, one at a time or in batches.",
        "read",
        "collection",
        "aal1",
    ),
    Permission(
        "points.write",
        "Upsert points, delete points, update or delete their vectors, and set, "
        "overwrite, delete or clear their payloads (by id or by filter).",
        "write",
        "collection",
        "aal2",
    ),
    Permission(
        "collections.create",
        "Create a collection, change its parameters (update_collection), create, rename "
        "or delete its aliases; restore a backup into a new collection (with points.write, "
        "and indexes.write when the backup has payload indexes).",
        "write",
        "collection",
        "aal2",
        _FIFTEEN_MINUTES,
        administrative=True,
    ),
    Permission(
        "collections.delete",
        "Delete a collection and all its points.",
        "write",
        "collection",
        "aal2",
        _FIFTEEN_MINUTES,
        administrative=True,
    ),
    Permission(
        "indexes.write",
        "Create or delete a payload index of a collection.",
        "write",
        "collection",
        "aal2",
        _FIFTEEN_MINUTES,
        administrative=True,
    ),
    Permission(
        "points.export",
        "Export every point of a collection as NDJSON, or back the collection up "
        "(GET /collections/{name}/backup, docs/backup.md).",
        "admin",
        "collection",
        "aal3",
        _FIVE_MINUTES,
        administrative=True,
    ),
    # Tenant administration (the admin API).
    Permission(
        "users.read",
        "List users and read a user's roles, status and factors (never secrets).",
        "admin",
        "tenant",
        "aal2",
        administrative=True,
    ),
    Permission(
        "users.manage",
        "Create users, change their roles or status, delete (deprovision) them.",
        "admin",
        "tenant",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "factors.reset",
        "Remove every factor of another user so that they enroll again.",
        "admin",
        "tenant",
        "aal3",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "roles.read",
        "List the built-in and custom roles of the tenant.",
        "admin",
        "tenant",
        "aal2",
        administrative=True,
    ),
    Permission(
        "roles.manage",
        "Create and delete custom roles.",
        "admin",
        "tenant",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "service_accounts.read",
        "List service accounts and their keys (ids and hints only).",
        "admin",
        "tenant",
        "aal2",
        administrative=True,
    ),
    Permission(
        "service_accounts.manage",
        "Create, change and delete service accounts and their roles.",
        "admin",
        "tenant",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "keys.manage",
        "Create and revoke service-account API keys.",
        "admin",
        "tenant",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "policy.read",
        "Read the tenant's MFA and assurance policy.",
        "admin",
        "tenant",
        "aal2",
        administrative=True,
    ),
    Permission(
        "policy.manage",
        "Change the tenant's MFA and assurance policy.",
        "admin",
        "tenant",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    Permission(
        "audit.read",
        "Query the audit log and verify its hash chain.",
        "admin",
        "tenant",
        "aal2",
        administrative=True,
    ),
    Permission(
        "audit.export",
        "Export the audit log as NDJSON.",
        "admin",
        "tenant",
        "aal3",
        _FIVE_MINUTES,
        administrative=True,
    ),
    # Installation administration: admins of the default tenant only.
    Permission(
        "tenants.read",
        "List the tenants of the installation.",
        "admin",
        "installation",
        "aal2",
        administrative=True,
    ),
    Permission(
        "tenants.manage",
        "Create tenants.",
        "admin",
        "installation",
        "aal2",
        _FIVE_MINUTES,
        administrative=True,
    ),
    # Self service (/me): every user, no role needed.
    Permission(
        "me.read",
        "Read one's own principal, roles, assurance, factors and sessions.",
        "read",
        "self",
        "aal1",
    ),
    Permission(
        "me.factors.read",
        "List one's own authenticators (never their secrets).",
        "read",
        "self",
        "aal1",
    ),
    Permission(
        "me.factors.enroll",
        "Enroll and activate one's own factors; regenerate one's recovery codes. A recent "
        "proof (max_age), with a factor the account already had: aal2 once it has one, "
        "unless its enrolment session is finishing the set-up.",
        "write",
        "self",
        "aal1",
        _FIVE_MINUTES,
        changes_sign_in=True,
    ),
    Permission(
        "me.factors.remove",
        "Remove one of one's own factors (a recent two-factor proof).",
        "write",
        "self",
        "aal2",
        _FIVE_MINUTES,
        changes_sign_in=True,
    ),
    Permission(
        "me.factors.rename",
        "Rename one of one's own factors (not a change of how the account signs in).",
        "write",
        "self",
        "aal1",
    ),
    Permission(
        "me.password.change",
        "Change one's own password, giving the current one (a recent proof: aal2 once the "
        "account has a factor); one's other sessions end.",
        "write",
        "self",
        "aal1",
        _FIVE_MINUTES,
        changes_sign_in=True,
    ),
    Permission(
        "me.sessions.manage",
        "List and end one's own sessions.",
        "write",
        "self",
        "aal1",
    ),
    Permission(
        "me.step_up",
        "Start a step-up (RFC 9470) with an enrolled factor able to reach the level asked.",
        "write",
        "self",
        "aal1",
        proves_factor=True,
    ),
)

GRANTABLE: frozenset[str] = frozenset(name for name, p in PERMISSIONS.items() if p.grantable)
ADMINISTRATIVE: frozenset[str] = frozenset(
    name for name, p in PERMISSIONS.items() if p.administrative
)


def permission(name: str) -> Permission:
    """The registered permission ``name``.

    An unknown name in code is a programming error, so this raises ``LookupError``
    (``decide`` itself never raises: it denies unknown actions).
    """
    try:
        return PERMISSIONS[name]
    except KeyError:
        raise LookupError(f"unknown permission {name!r}") from None
