"""The assurance policy: which ``acr`` and how fresh an ``auth_time`` each action needs.

A tenant's policy is a JSON document (``GET|PUT /admin/policy``). ``Policy.from_document``
validates it strictly: unknown keys, unknown actions, wrong types and requirements
below the floors are refused with a ``ValidationError`` that names them. Missing keys
take the secure defaults, which come from the permission registry (issue 4):

- point writes ``aal2``; create/delete collection and payload index ``aal2`` within 15 min;
- user, role, service-account, key and policy administration ``aal2`` within 5 min;
- export, factor resets and audit export ``aal3`` within 5 min;
- reads ``aal1`` (the login's level for users; service accounts hold ``aal1``);
- ``admin_requires_aal3`` raises every administrative action to ``aal3``.

Floors that no document can lower: administrative actions need at least ``aal2``
("MFA protects every administrative action"), and a password standing alone
(``mfa_required: false``) must be at least 15 characters (NIST SP 800-63B-4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bastion.authz.permissions import PERMISSIONS, Permission, permission
from bastion.authz.roles import BUILTIN_ROLES
from bastion.domain import ACR_VALUES, Requirement, acr_rank
from bastion.errors import ValidationError

MAX_AGE_LIMIT = 86_400  # a max_age beyond a day is no freshness requirement at all
# A change of how an account signs in needs a proof at most this old (issue 11.1).
RECENT_PROOF_LIMIT = 900
PASSWORD_MIN_WITH_MFA = 8
PASSWORD_MIN_ALONE = 15
PASSWORD_MAX_MIN_LENGTH = 64

DOCUMENT_KEYS: tuple[str, ...] = (
    "mfa_required",
    "password_min_length",
    "admin_requires_aal3",
    "service_account_actions",
    "actions",
    "risk",
)
REQUIREMENT_KEYS: tuple[str, ...] = ("acr", "max_age")

# A service account authenticates with an API key (one factor, aal1) and cannot do
# interactive MFA. It may perform these actions (still only where its roles allow);
# everything else is denied to it. Administrative actions can never be listed.
DEFAULT_SERVICE_ACCOUNT_ACTIONS = frozenset(
    {"collections.read", "points.read", "points.search", "points.write"}
)


def _default_requirements() -> Mapping[str, Requirement]:
    return MappingProxyType(
        {
            name: Requirement(item.default_acr, item.default_max_age)
            for name, item in PERMISSIONS.items()
        }
    )


def _service_account_eligible(item: Permission) -> bool:
    return item.scope == "collection" and not item.administrative


@dataclass(frozen=True)
class Policy:
    """A tenant's validated MFA and assurance policy (immutable)."""

    requirements: Mapping[str, Requirement] = field(default_factory=_default_requirements)
    admin_requires_aal3: bool = False
    service_account_actions: frozenset[str] = DEFAULT_SERVICE_ACCOUNT_ACTIONS
    mfa_required: bool = True
    password_min_length: int = PASSWORD_MIN_WITH_MFA
    # The risk engine's section (weights, thresholds, lists: docs/risk.md), as stored. The
    # risk package validates it (``risk.load_risk_policy``; it sits above authz).
    risk_document: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def login_acr(self) -> str:
        """What a sign-in needs before the risk engine adds to it (never lowered by it)."""
        return "aal2" if self.mfa_required else "aal1"

    def requirement(self, action: str) -> Requirement:
        """The effective requirement of ``action`` (``admin_requires_aal3`` applied).

        Raises ``LookupError`` for an action that is not registered.
        """
        item = permission(action)
        base = self.requirements.get(action) or Requirement(item.default_acr, item.default_max_age)
        if self.admin_requires_aal3 and item.administrative:
            return Requirement("aal3", base.max_age)
        return base

    # -- the JSON document -------------------------------------------------------

    @classmethod
    def from_document(cls, document: object) -> Policy:
        """Validate a policy document (as PUT by an admin); missing keys take defaults."""
        if not isinstance(document, Mapping):
            raise ValidationError("The policy must be a JSON object.")
        unknown = sorted(str(key) for key in document if key not in DOCUMENT_KEYS)
        if unknown:
            raise ValidationError(
                f"Unknown policy keys: {', '.join(unknown)}. "
                f"Known keys: {', '.join(DOCUMENT_KEYS)}."
            )
        mfa_required = _boolean(document, "mfa_required", True)
        admin_requires_aal3 = _boolean(document, "admin_requires_aal3", False)
        floor = PASSWORD_MIN_WITH_MFA if mfa_required else PASSWORD_MIN_ALONE
        password_min_length = _integer(document, "password_min_length", floor)
        if not floor <= password_min_length <= PASSWORD_MAX_MIN_LENGTH:
            raise ValidationError(
                f"password_min_length must be between {floor} and {PASSWORD_MAX_MIN_LENGTH}"
                + (" when mfa_required is false." if not mfa_required else ".")
            )
        return cls(
            requirements=_requirements(document.get("actions", {})),
            admin_requires_aal3=admin_requires_aal3,
            service_account_actions=_service_account_actions(
                document.get("service_account_actions", sorted(DEFAULT_SERVICE_ACCOUNT_ACTIONS))
            ),
            mfa_required=mfa_required,
            password_min_length=password_min_length,
            risk_document=_risk_document(document.get("risk", {})),
        )

    def to_document(self) -> dict[str, Any]:
        """The full JSON document (every key, every action), as ``GET /admin/policy`` shows."""
        return {
            "mfa_required": self.mfa_required,
            "password_min_length": self.password_min_length,
            "admin_requires_aal3": self.admin_requires_aal3,
            "service_account_actions": sorted(self.service_account_actions),
            "actions": {
                name: {"acr": req.acr, "max_age": req.max_age}
                for name, req in sorted(self.requirements.items())
            },
            "risk": dict(self.risk_document),
        }

    def effective_document(self) -> dict[str, dict[str, Any]]:
        """Each action's effective requirement (after ``admin_requires_aal3``)."""
        result: dict[str, dict[str, Any]] = {}
        for name in sorted(PERMISSIONS):
            req = self.requirement(name)
            result[name] = {"acr": req.acr, "max_age": req.max_age}
        return result


DEFAULT_POLICY = Policy()


def _boolean(document: Mapping[str, Any], key: str, default: bool) -> bool:
    value = document.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{key} must be true or false.")
    return value


def _integer(document: Mapping[str, Any], key: str, default: int) -> int:
    value = document.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{key} must be an integer.")
    return value


def _risk_document(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError("risk must be an object (docs/risk.md).")
    return MappingProxyType(dict(value))


def _requirements(actions: object) -> Mapping[str, Requirement]:
    if not isinstance(actions, Mapping):
        raise ValidationError("actions must be an object mapping action names to requirements.")
    unknown = sorted(str(name) for name in actions if name not in PERMISSIONS)
    if unknown:
        raise ValidationError(f"Unknown actions in the policy: {', '.join(unknown)}.")
    table = dict(_default_requirements())
    for name, entry in actions.items():
        table[name] = _requirement(name, entry)
    return MappingProxyType(table)


def _requirement(name: str, entry: object) -> Requirement:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"actions.{name} must be an object with acr and max_age.")
    unknown = sorted(str(key) for key in entry if key not in REQUIREMENT_KEYS)
    if unknown:
        raise ValidationError(f"Unknown keys in actions.{name}: {', '.join(unknown)}.")
    acr = entry.get("acr")
    if acr not in ACR_VALUES:
        raise ValidationError(f"actions.{name}.acr must be one of {', '.join(ACR_VALUES)}.")
    max_age = entry.get("max_age")
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, int)
        or not 0 < max_age <= MAX_AGE_LIMIT
    ):
        raise ValidationError(
            f"actions.{name}.max_age must be null or whole seconds from 1 to {MAX_AGE_LIMIT}."
        )
    if PERMISSIONS[name].administrative and acr_rank(acr) < acr_rank("aal2"):
        raise ValidationError(
            f"actions.{name} is administrative: it needs at least aal2 (multi-factor)."
        )
    if PERMISSIONS[name].changes_sign_in and (max_age is None or max_age > RECENT_PROOF_LIMIT):
        raise ValidationError(
            f"actions.{name} changes how an account signs in: it needs a recent proof "
            f"(max_age from 1 to {RECENT_PROOF_LIMIT} seconds)."
        )
    if PERMISSIONS[name].proves_factor and (acr != "aal1" or max_age is not None):
        raise ValidationError(
            f"actions.{name} starts a step-up: it cannot require the assurance it grants "
            "(acr aal1, max_age null)."
        )
    return Requirement(acr, max_age)


def _service_account_actions(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError("service_account_actions must be a list of action names.")
    if not all(isinstance(item, str) for item in value):
        raise ValidationError("service_account_actions must be a list of action names.")
    unknown = sorted(set(value) - set(PERMISSIONS))
    if unknown:
        raise ValidationError(f"Unknown actions in service_account_actions: {', '.join(unknown)}.")
    refused = sorted(name for name in value if not _service_account_eligible(PERMISSIONS[name]))
    if refused:
        raise ValidationError(
            "Service accounts cannot do interactive MFA, so they may not perform "
            f"administrative or self-service actions: {', '.join(refused)}."
        )
    return frozenset(value)


def render_permissions_markdown(policy: Policy = DEFAULT_POLICY) -> str:
    """``docs/permissions.md``: every permission, its roles and default requirement."""
    lines = [
        "# Permissions",
        "",
        "<!-- Generated from bastion.authz (permissions, roles, policy):",
        "     python -c 'import bastion.authz as a; print(a.render_permissions_markdown())'",
        "     tests/unit/test_policy.py checks that every permission and policy key is listed. -->",
        "",
        "Every endpoint asks `authz.decide(principal, action, resource)` about one of",
        "these actions. Roles are sets of them; the assurance policy (`GET|PUT /admin/policy`)",
        "says which `acr` and how recent an `auth_time` each needs. A `max_age` of `-` means",
        "any age. Scope `collection` may be narrowed to collections (`docs`, `docs-*`);",
        "`tenant` needs a grant on the whole tenant (admins of the `default` tenant hold it",
        "in every tenant); `installation` is for admins of the `default` tenant only;",
        "`self` is held by every user for their own account. A restricted enrollment",
        "token (a user without an active second factor) may use only `me.read` and",
        "`me.factors.enroll`; a service account may use `me.read` and the actions listed",
        "in the policy's `service_account_actions` that its roles grant.",
        "",
        "The changes of how an account signs in (`me.factors.enroll`, `me.factors.remove`,",
        "`me.password.change`) need a recent proof: an authentication within their",
        f"`max_age` (the policy may set 1 to {RECENT_PROOF_LIMIT} seconds, never null), and at",
        "least `aal2` once the account has an active factor, so a stale or stolen token",
        "cannot add the thief's authenticator. The enrolment token setting up an account's",
        "first factor is the exception; a factor or recovery codes added in a session never",
        "satisfy that session's step-up.",
        "",
        "| permission | kind | scope | viewer | developer | admin | default acr | max_age (s) "
        "| with `admin_requires_aal3` | service accounts | description |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    raised = Policy(admin_requires_aal3=True, requirements=policy.requirements)
    for name, item in sorted(PERMISSIONS.items()):
        req = policy.requirement(name)
        holders = [
            "yes"
            if name in BUILTIN_ROLES[role].permissions
            else ("all users" if not item.grantable else "-")
            for role in ("viewer", "developer", "admin")
        ]
        lines.append(
            f"| `{name}` | {item.kind} | {item.scope} | {' | '.join(holders)} | {req.acr} "
            f"| {req.max_age if req.max_age is not None else '-'} "
            f"| {raised.requirement(name).acr} "
            f"| {'yes' if name in policy.service_account_actions else 'no'} "
            f"| {item.description} |"
        )
    lines += [
        "",
        "## Policy document",
        "",
        "`GET /admin/policy` returns, and `PUT /admin/policy` accepts, one JSON object.",
        "Unknown keys are refused; missing keys take the defaults below.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
        "| `mfa_required` | `true` | every human user needs a second factor; "
        "a user without one is sent to enrollment |",
        f"| `password_min_length` | `{PASSWORD_MIN_WITH_MFA}` | minimum password length "
        f"({PASSWORD_MIN_ALONE} at least when `mfa_required` is false; at most "
        f"{PASSWORD_MAX_MIN_LENGTH}) |",
        "| `admin_requires_aal3` | `false` | raises every administrative action "
        "(admin permissions and collection/index administration) to `aal3` |",
        "| `service_account_actions` | `"
        + ", ".join(sorted(DEFAULT_SERVICE_ACCOUNT_ACTIONS))
        + "` | what service accounts (API keys, `aal1`, no interactive MFA) may do, "
        "within their roles; administrative actions cannot be listed |",
        '| `actions` | the table above | per action `{"acr": …, "max_age": …}` with acr '
        "`aal1`, `aal2` or `aal3` and max_age whole seconds or null; administrative "
        "actions need at least `aal2`; changes of how an account signs in need a "
        f"max_age of at most {RECENT_PROOF_LIMIT} |",
        "| `risk` | docs/risk.md | the risk engine's weights, thresholds, network and country "
        "lists, travel, hours, velocity, remembered-device and volume settings; validated "
        "key by key (`risk.travel.max_speed_kmh must be …`) |",
        "",
    ]
    return "\n".join(lines)
