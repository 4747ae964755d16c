"""Roles: named sets of permissions. Three are built in; tenants add custom ones."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bastion.authz.permissions import GRANTABLE, PERMISSIONS
from bastion.errors import ValidationError
from bastion.text import check_name


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    permissions: frozenset[str]
    builtin: bool = False


_VIEWER = frozenset({"collections.read", "points.read", "points.search"})
_DEVELOPER = _VIEWER | {"points.write", "collections.create", "collections.delete", "indexes.write"}

BUILTIN_ROLES: Mapping[str, Role] = MappingProxyType(
    {
        "viewer": Role(
            "viewer",
            "List and read collections; retrieve, scroll, count, search and query points.",
            _VIEWER,
            builtin=True,
        ),
        "developer": Role(
            "developer",
            "Viewer, plus write points and create/delete collections and payload indexes.",
            _DEVELOPER,
            builtin=True,
        ),
        "admin": Role(
            "admin",
            "Everything: users, roles, service accounts, keys, policy, audit, export.",
            GRANTABLE,
            builtin=True,
        ),
    }
)

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def validate_custom_role(name: str, permissions: Iterable[str], description: str = "") -> Role:
    """A custom role from admin input, or ``ValidationError`` saying what is wrong."""
    if isinstance(name, str):
        check_name(name, field="name")
    if not isinstance(name, str) or not ROLE_NAME.fullmatch(name):
        raise ValidationError(
            "A role name is 1 to 64 characters: lower-case letters, digits, '_', '.', '-', "
            "starting with a letter.",
            field="name",
        )
    if name in BUILTIN_ROLES:
        raise ValidationError(f"{name!r} is a built-in role; choose another name.")
    if isinstance(permissions, str):
        raise ValidationError("permissions must be a list of permission names.")
    wanted = list(permissions)
    if not wanted:
        raise ValidationError("A role needs at least one permission.")
    if not all(isinstance(item, str) for item in wanted):
        raise ValidationError("permissions must be a list of permission names.")
    unknown = sorted(set(wanted) - set(PERMISSIONS))
    if unknown:
        raise ValidationError(f"Unknown permissions: {', '.join(unknown)}.")
    personal = sorted(set(wanted) - GRANTABLE)
    if personal:
        raise ValidationError(
            f"Every user already holds {', '.join(personal)}; a role cannot grant it."
        )
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationError(
            "description must be a string of at most 500 characters.", field="description"
        )
    check_name(description, field="description")
    return Role(name, description, frozenset(wanted), builtin=False)


def role_named(name: str, custom: Mapping[str, Role]) -> Role | None:
    """The built-in or custom role ``name`` (built-ins win), or ``None``."""
    return BUILTIN_ROLES.get(name) or custom.get(name)


def resolve_roles(names: Iterable[str], custom: Mapping[str, Role]) -> tuple[Role, ...]:
    """The roles named in admin input, or ``ValidationError`` listing the unknown names."""
    if isinstance(names, str):
        raise ValidationError("roles must be a list of role names.")
    roles: list[Role] = []
    unknown: list[str] = []
    for name in dict.fromkeys(names):
        found = role_named(name, custom) if isinstance(name, str) else None
        if found is None:
            unknown.append(str(name))
        else:
            roles.append(found)
    if unknown:
        raise ValidationError(f"Unknown roles: {', '.join(unknown)}.")
    return tuple(roles)


def permissions_of(roles: Iterable[Role]) -> frozenset[str]:
    result: frozenset[str] = frozenset()
    for item in roles:
        result |= item.permissions
    return result


def can_grant(granter_permissions: frozenset[str], role: Role) -> bool:
    """An admin cannot grant a role that holds a permission they do not hold themselves."""
    return role.permissions <= granter_permissions
