"""A user's life as administrators change it: created, given roles, suspended, reset,
deprovisioned. Each use case runs in the caller's write transaction, asks ``check``
(``authz.decide`` with what that transaction reads) and records its own event.

Two rules hold for every change, both decided by ``authz.decide`` from the resource's
attributes: an admin cannot grant, nor manage a holder of, a role beyond their own
permissions (``Resource.roles``); the last active admin of a tenant cannot lose that
status, by roles, suspension or deletion (``Resource.removes_last_admin``, ``409``).
Suspending or deleting a user revokes every session in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection

from bastion.audit import record, safe_text
from bastion.authz import BUILTIN_ROLES, Resource, Role, permissions_of, resolve_roles, role_named
from bastion.domain import Grant, Principal
from bastion.errors import Conflict
from bastion.factors.password import check_new_password, hash_password
from bastion.identity.authorization import check
from bastion.identity.credentials import reset_factors, revoke_devices, revoke_user_sessions
from bastion.identity.grants import (
    grant_collections,
    grants_in_tenant,
    grants_of,
    remove_grants,
    replace_grants,
)
from bastion.identity.provisioning import provision_user
from bastion.identity.rules import custom_roles_of, load_policy
from bastion.identity.tenants import Tenant
from bastion.identity.users import (
    EnrollmentLink,
    User,
    UserStatus,
    create_enrollment_link,
    deprovision_user,
    list_users,
    live_user,
    set_password_hash,
    set_status,
    spend_enrollment_link,
)
from bastion.storage import CommitThenRaise

ADMIN_PERMISSIONS = BUILTIN_ROLES["admin"].permissions


def roles_held(grants: Sequence[Grant], custom: Mapping[str, Role]) -> tuple[Role, ...]:
    """The roles behind grants (unknown, e.g. deleted custom roles, grant nothing)."""
    found = (role_named(grant.role, custom) for grant in grants)
    return tuple(role for role in found if role is not None)


def is_admin(grants: Sequence[Grant], custom: Mapping[str, Role]) -> bool:
    """Whether grants give every permission of the built-in ``admin`` role tenant-wide."""
    whole = [grant for grant in grants if grant.collections is None]
    return permissions_of(roles_held(whole, custom)) >= ADMIN_PERMISSIONS


def removes_last_admin(
    conn: Connection, user: User, custom: Mapping[str, Role], *, stays_admin: bool
) -> bool:
    """Whether ``user`` is the tenant's last active admin and would stop being one."""
    if stays_admin or not user.active:
        return False
    grants = grants_in_tenant(conn, "user", user.tenant_id)
    if not is_admin(grants.get(user.id, ()), custom):
        return False
    active = {other.id for other in list_users(conn, tenant_id=user.tenant_id) if other.active}
    return not any(
        other != user.id and other in active and is_admin(held, custom)
        for other, held in grants.items()
    )


def _failure(user: User) -> tuple[str, Mapping[str, Any]]:
    return "user.updated", {"user_id": user.id, "username": safe_text(user.username)}


def _state(grants: tuple[Grant, ...], status: str) -> dict[str, Any]:
    return {
        "roles": list(dict.fromkeys(grant.role for grant in grants)),
        "collections": grant_collections(grants),
        "status": status,
    }


@dataclass(frozen=True)
class NewUser:
    user: User
    link: EnrollmentLink | None  # when created without a password (shown once)


def create_user_account(
    conn: Connection,
    actor: Principal,
    tenant: Tenant,
    *,
    hasher: PasswordHasher,
    username: str,
    password: str | None,
    roles: Sequence[str],
    collections: Sequence[str] | None,
    now: datetime,
) -> NewUser:
    """A user with ``roles`` in ``tenant`` (a password, or an enrollment link)."""
    granted = resolve_roles(roles, custom_roles_of(conn, tenant.id))
    check(
        conn,
        actor,
        "users.manage",
        Resource(tenant.id, roles=granted),
        subject=f"tenant:{tenant.id}",
        now=now,
    )
    role_names = [role.name for role in granted]
    try:
        user = provision_user(
            conn,
            hasher=hasher,
            tenant_id=tenant.id,
            username=username,
            password=password,
            roles=role_names,
            collections=collections,
            now=now,
        )
    except Conflict as taken:  # recorded in the caller's tenant only: the probe, on record
        record(
            conn,
            "user.created",
            outcome="failure",
            actor=actor.id,
            tenant_id=tenant.id,
            resource=f"tenant:{tenant.id}",
            reason=taken.code,
            details={"username": safe_text(username), "tenant": tenant.name},
            now=now,
        )
        raise CommitThenRaise(taken) from None
    link = None if user.password_hash else create_enrollment_link(conn, user.id, now=now)
    record(
        conn,
        "user.created",
        actor=actor.id,
        tenant_id=tenant.id,
        resource=f"user:{user.id}",
        details={
            "user_id": user.id,
            "username": user.username,
            "roles": role_names,
            "status": user.status,
            "tenant": tenant.name,
            "enrollment": link is not None,
        },
        now=now,
    )
    return NewUser(user, link)


@dataclass(frozen=True)
class UserChange:
    """What a PATCH changes; ``None`` (and ``collections_given`` False): unchanged."""

    roles: Sequence[str] | None = None
    collections: Sequence[str] | None = None
    collections_given: bool = False  # collections=None then means "every collection"
    status: UserStatus | None = None


def update_user(
    conn: Connection, actor: Principal, user_id: str, change: UserChange, *, now: datetime
) -> User:
    """Change a user's roles (and the collections they are narrowed to) or status."""
    user = live_user(conn, user_id)
    previous = user.status
    custom = custom_roles_of(conn, user.tenant_id)
    before = grants_of(conn, "user", user.id)
    if change.roles is not None:
        roles = resolve_roles(change.roles, custom)
        role_names = [role.name for role in roles]
    else:
        roles = roles_held(before, custom)
        role_names = list(dict.fromkeys(grant.role for grant in before))
    collections = (
        list(change.collections) if change.collections is not None else None
    ) if change.collections_given else grant_collections(before)  # fmt: skip
    status = change.status or user.status
    narrowed = tuple(collections) if collections is not None else None
    after = tuple(Grant(name, user.tenant_id, narrowed) for name in role_names)
    resource = Resource(
        user.tenant_id,
        roles=(*roles_held(before, custom), *roles),
        removes_last_admin=removes_last_admin(
            conn, user, custom, stays_admin=status == "active" and is_admin(after, custom)
        ),
    )
    subject = f"user:{user.id}"
    check(conn, actor, "users.manage", resource, subject=subject, now=now, failure=_failure(user))
    if change.roles is not None or change.collections_given:
        replace_grants(
            conn,
            "user",
            user.id,
            tenant_id=user.tenant_id,
            roles=role_names,
            collections=collections,
            now=now,
        )
    if status != user.status:
        user = set_status(conn, user.id, status, now=now)
        if status == "suspended":
            revoke_user_sessions(conn, user.id, reason="user_suspended", now=now)
            # A remembered device is a possession factor: it must not outlive the
            # suspension (a reactivated account signs in with its factors again).
            revoke_devices(
                conn, actor_id=actor.id, user_id=user.id, tenant_id=user.tenant_id,
                reason="user_suspended", now=now,
            )  # fmt: skip
    suspended = status == "suspended" and previous != "suspended"
    record(
        conn,
        "user.suspended" if suspended else "user.updated",
        actor=actor.id,
        tenant_id=user.tenant_id,
        resource=subject,
        details={
            "user_id": user.id,
            "username": safe_text(user.username),
            "before": _state(before, previous),
            "after": _state(grants_of(conn, "user", user.id), user.status),
        },
        now=now,
    )
    return user


def delete_user(conn: Connection, actor: Principal, user_id: str, *, now: datetime) -> User:
    """Deprovision: every session, grant and factor of the user ends with it."""
    user = live_user(conn, user_id)
    custom = custom_roles_of(conn, user.tenant_id)
    before = grants_of(conn, "user", user.id)
    resource = Resource(
        user.tenant_id,
        roles=roles_held(before, custom),
        removes_last_admin=removes_last_admin(conn, user, custom, stays_admin=False),
    )
    subject = f"user:{user.id}"
    check(conn, actor, "users.manage", resource, subject=subject, now=now, failure=_failure(user))
    revoke_user_sessions(conn, user.id, reason="user_deleted", now=now)
    revoke_devices(
        conn, actor_id=actor.id, user_id=user.id, tenant_id=user.tenant_id,
        reason="user_deleted", now=now,
    )  # fmt: skip
    remove_grants(conn, "user", user.id)
    reset_factors(conn, user_id=user.id)
    deprovision_user(conn, user.id, now=now)
    record(
        conn,
        "user.deleted",
        actor=actor.id,
        tenant_id=user.tenant_id,
        resource=subject,
        details={
            "user_id": user.id,
            "username": safe_text(user.username),
            "before": _state(before, user.status),
        },
        now=now,
    )
    return user


def choose_password(
    conn: Connection, *, hasher: PasswordHasher, token: str, password: str, now: datetime
) -> User:
    """A user created without a password chooses one with their one-time enrollment link
    (unknown or used link: 401; a weak password: 422, and the rollback keeps the link)."""
    user = spend_enrollment_link(conn, token, now=now)
    checked = check_new_password(
        password,
        min_length=load_policy(conn, user.tenant_id).password_min_length,
        context_words=[user.username, "bastion"],
    )
    set_password_hash(conn, user.id, hash_password(checked, hasher=hasher), now=now)
    record(
        conn,
        "user.password_set",
        actor=user.id,
        tenant_id=user.tenant_id,
        resource=f"user:{user.id}",
        details={"user_id": user.id, "username": user.username},
        now=now,
    )
    return user


def reset_user_factors(conn: Connection, actor: Principal, user_id: str, *, now: datetime) -> int:
    """Remove every factor of a user (they enrol again) and end their sessions."""
    user = live_user(conn, user_id)
    custom = custom_roles_of(conn, user.tenant_id)
    held = roles_held(grants_of(conn, "user", user.id), custom)
    subject = f"user:{user.id}"
    check(conn, actor, "factors.reset", Resource(user.tenant_id, roles=held), subject=subject,
          now=now)  # fmt: skip
    removed = reset_factors(conn, user_id=user.id)
    revoke_user_sessions(conn, user.id, reason="factors_reset", now=now)
    record(
        conn,
        "user.factors_reset",
        actor=actor.id,
        tenant_id=user.tenant_id,
        resource=subject,
        details={
            "user_id": user.id,
            "username": safe_text(user.username),
            "factors_removed": removed,
        },
        now=now,
    )
    return removed
