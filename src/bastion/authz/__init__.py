"""Authorisation: registered permissions, roles, the assurance policy and ``decide``."""

from bastion.authz.decide import (
    DEFAULT_TENANT,
    ENROLLMENT_ACTIONS,
    SERVICE_ACCOUNT_SELF_ACTIONS,
    decide,
    granted_permissions,
)
from bastion.authz.decision import DENIALS, Decision, Effect, collection_matches, enforce
from bastion.authz.permissions import (
    ADMINISTRATIVE,
    GRANTABLE,
    PERMISSIONS,
    Permission,
    PermissionKind,
    PermissionScope,
    permission,
)
from bastion.authz.policy import (
    DEFAULT_POLICY,
    DEFAULT_SERVICE_ACCOUNT_ACTIONS,
    DOCUMENT_KEYS,
    Policy,
    render_permissions_markdown,
)
from bastion.authz.resource import Account, Resource
from bastion.authz.roles import (
    BUILTIN_ROLES,
    Role,
    can_grant,
    permissions_of,
    resolve_roles,
    role_named,
    validate_custom_role,
)
from bastion.domain import Requirement

__all__ = [
    "ADMINISTRATIVE",
    "BUILTIN_ROLES",
    "DEFAULT_POLICY",
    "DEFAULT_SERVICE_ACCOUNT_ACTIONS",
    "DEFAULT_TENANT",
    "DENIALS",
    "DOCUMENT_KEYS",
    "ENROLLMENT_ACTIONS",
    "GRANTABLE",
    "PERMISSIONS",
    "SERVICE_ACCOUNT_SELF_ACTIONS",
    "Account",
    "Decision",
    "Effect",
    "Permission",
    "PermissionKind",
    "PermissionScope",
    "Policy",
    "Requirement",
    "Resource",
    "Role",
    "can_grant",
    "collection_matches",
    "decide",
    "enforce",
    "granted_permissions",
    "permission",
    "permissions_of",
    "render_permissions_markdown",
    "resolve_roles",
    "role_named",
    "validate_custom_role",
]
