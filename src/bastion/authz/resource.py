"""What an action is about, as ``decide`` reads it: the resource and its attributes.

Attributes are facts a route or a service reads before it asks (inside the transaction
of the change when they depend on stored state); ``decide`` stays pure. Their default
says "no such fact": no roles involved, nobody's last admin status changed, one tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.authz.roles import Role


@dataclass(frozen=True)
class Account:
    """The caller's own account, for actions on how it signs in (``changes_sign_in``,
    ``proves_factor`` permissions)."""

    has_active_factor: bool
    # Every active factor was enrolled in the caller's session (its enrolment session
    # finishing the set-up, e.g. making recovery codes after activating TOTP).
    set_up_by_this_session: bool = False
    # The enrolled methods able to reach the assurance a step-up asks for.
    step_up_methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    tenant_id: str
    # Data plane: the collection; ``None`` for a listing (``Decision.collections``).
    collection: str | None = None
    # An admin listing that an installation admin (default tenant) may see across every
    # tenant (``Decision.every_tenant``); others see ``tenant_id``, their own.
    every_tenant: bool = False
    # The roles the target holds or would hold: none may reach beyond the caller's own
    # tenant-wide permissions (no granting, nor managing a holder of, more than one has).
    roles: tuple[Role, ...] = ()
    # The change would leave the tenant without an active admin.
    removes_last_admin: bool = False
    # The caller's own account (self-service on authenticators); ``None``: not read,
    # which fails closed for the permissions that need it.
    account: Account | None = None
