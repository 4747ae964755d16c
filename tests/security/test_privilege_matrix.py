"""The privilege matrix: every built-in role x every permission x tenant x assurance,
and every rule read from a resource's attributes (issue 12: every allow, deny and
step-up is ``authz.decide``'s): the grant ceiling, the last-admin rule, the
installation admin's listings across tenants, adding a factor and stepping up.

The expected tables below are written by hand from issues 4 and 12 and DESIGN.md, not
derived from the registry. A permission added to ``PERMISSIONS`` without a row here
fails ``test_every_permission_has_a_decision``: a new action needs an explicit decision.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bastion.authz import (
    BUILTIN_ROLES,
    DEFAULT_POLICY,
    PERMISSIONS,
    Account,
    Decision,
    Effect,
    Policy,
    Resource,
    decide,
)
from bastion.domain import Grant, Principal, PrincipalKind

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACME, GLOBEX, DEFAULT = "tnt_acme", "tnt_globex", "tnt_default"
ROLES = {"V": "viewer", "D": "developer", "A": "admin"}
OUTCOME = {"A": Effect.ALLOW, "D": Effect.DENY, "S": Effect.STEP_UP}

# Scenarios, in the order of the letters of each row:
#   1 aal1_stale  user of acme, aal1, authenticated an hour ago, acting in acme
#   2 aal2_10min  user of acme, aal2, ten minutes ago
#   3 aal2_fresh  user of acme, aal2, one minute ago
#   4 aal3_fresh  user of acme, aal3, one minute ago
#   5 root_own    user of the default tenant, aal3, one minute ago, acting in default
#   6 root_cross  user of the default tenant, aal3, one minute ago, acting in acme
#   7 service     service account of acme (API key: aal1), acting in acme
SCENARIOS = ("aal1_stale", "aal2_10min", "aal2_fresh", "aal3_fresh", "root_own", "root_cross",
             "service")  # fmt: skip

# permission: (roles holding it, outcome for a holder in each scenario).
# A = allow, D = deny, S = step-up. A role not listed is denied in every scenario.
# "VDA" for /me permissions: every user holds them whatever the role.
EXPECTED: dict[str, tuple[str, str]] = {
    "collections.read":        ("VDA", "AAAAADA"),
    "points.read":             ("VDA", "AAAAADA"),
    "points.search":           ("VDA", "AAAAADA"),
    "points.write":            ("DA",  "SAAAADA"),
    "collections.create":      ("DA",  "SAAAADD"),
    "collections.delete":      ("DA",  "SAAAADD"),
    "indexes.write":           ("DA",  "SAAAADD"),
    "points.export":           ("A",   "SSSAADD"),
    "users.read":              ("A",   "SAAAAAD"),
    "users.manage":            ("A",   "SSAAAAD"),
    "factors.reset":           ("A",   "SSSAAAD"),
    "roles.read":              ("A",   "SAAAAAD"),
    "roles.manage":            ("A",   "SSAAAAD"),
    "service_accounts.read":   ("A",   "SAAAAAD"),
    "service_accounts.manage": ("A",   "SSAAAAD"),
    "keys.manage":             ("A",   "SSAAAAD"),
    "policy.read":             ("A",   "SAAAAAD"),
    "policy.manage":           ("A",   "SSAAAAD"),
    "audit.read":              ("A",   "SAAAAAD"),
    "audit.export":            ("A",   "SSSAAAD"),
    "tenants.read":            ("A",   "DDDDAAD"),
    "tenants.manage":          ("A",   "DDDDAAD"),
    "me.read":                 ("VDA", "AAAAADA"),
    "me.factors.read":         ("VDA", "AAAAADD"),
    # Without the account's attributes (not read): treated as holding a factor. Changes of
    # how the account signs in need a recent (5 min) two-factor proof (issue 11.1).
    "me.factors.enroll":       ("VDA", "SSAAADD"),
    "me.factors.remove":       ("VDA", "SSAAADD"),
    "me.factors.rename":       ("VDA", "AAAAADD"),  # a label: not a sign-in change
    "me.password.change":      ("VDA", "SSAAADD"),
    "me.sessions.manage":      ("VDA", "AAAAADD"),
    # Without the account's attributes: no factor able to step up is known.
    "me.step_up":              ("VDA", "DDDDDDD"),
}  # fmt: skip

# With "admin_requires_aal3": these need aal3, so a fresh aal2 user must step up.
RAISED_BY_ADMIN_SWITCH = {
    "collections.create", "collections.delete", "indexes.write", "points.export",
    "users.read", "users.manage", "factors.reset", "roles.read", "roles.manage",
    "service_accounts.read", "service_accounts.manage", "keys.manage", "policy.read",
    "policy.manage", "audit.read", "audit.export", "tenants.read", "tenants.manage",
}  # fmt: skip

# A user without any role may still do these (their own account; me.step_up and
# me.factors.enroll also read the account, see the factor tables below).
SELF_SERVICE = {
    "me.read", "me.factors.read", "me.factors.enroll", "me.factors.remove", "me.sessions.manage",
    "me.password.change", "me.factors.rename",
}  # fmt: skip

# A restricted enrollment token may do exactly these.
ENROLLMENT_ALLOWED = {"me.read", "me.factors.read", "me.factors.enroll"}

# An account without a factor yet, as a self-service resource.
FRESH = Account(has_active_factor=False)


def principal(role: str, scenario: str) -> tuple[Principal, Resource]:
    kind: PrincipalKind = "user"
    tenant, tenant_name, target = ACME, "acme", ACME
    acr, age = {
        "aal1_stale": ("aal1", 3600),
        "aal2_10min": ("aal2", 600),
        "aal2_fresh": ("aal2", 60),
    }.get(scenario, ("aal3", 60))
    if scenario in ("root_own", "root_cross"):
        tenant, tenant_name = DEFAULT, "default"
        target = DEFAULT if scenario == "root_own" else ACME
    if scenario == "service":
        kind, acr, age = "service_account", "aal1", 3600
    who = Principal(
        kind=kind,
        id="sa_1" if kind == "service_account" else "usr_1",
        name="someone",
        tenant_id=tenant,
        tenant_name=tenant_name,
        grants=(Grant(role, tenant),),
        acr=acr,
        auth_time=NOW - timedelta(seconds=age),
    )
    return who, Resource(target, "docs")


def test_every_permission_has_a_decision() -> None:
    missing = sorted(set(PERMISSIONS) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(PERMISSIONS))
    assert not missing, f"add a privilege-matrix row for {missing}"
    assert not stale, f"remove privilege-matrix rows for {stale}"
    assert all(len(row) == len(SCENARIOS) for _, row in EXPECTED.values())


CASES = [
    (permission, role, scenario)
    for permission in sorted(EXPECTED)
    for role in ROLES.values()
    for scenario in SCENARIOS
]


@pytest.mark.parametrize(("permission", "role", "scenario"), CASES)
def test_privilege_matrix(permission: str, role: str, scenario: str) -> None:
    holders, row = EXPECTED[permission]
    holds = any(ROLES[letter] == role for letter in holders)
    expected = OUTCOME[row[SCENARIOS.index(scenario)]] if holds else Effect.DENY
    who, resource = principal(role, scenario)
    decision = decide(who, permission, resource, policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is expected, (permission, role, scenario, decision.reason)
    if decision.effect is Effect.STEP_UP:
        required = DEFAULT_POLICY.requirement(permission)
        floor = "aal2" if PERMISSIONS[permission].changes_sign_in else required.acr
        assert decision.required_acr == max(floor, required.acr)
        assert decision.max_age == required.max_age


@pytest.mark.parametrize("permission", sorted(EXPECTED))
@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_other_tenant_always_denied(permission: str, role: str) -> None:
    who, _ = principal(role, "aal3_fresh")
    decision = decide(who, permission, Resource(GLOBEX, "docs"), policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is Effect.DENY


@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_admin_switch_matrix(permission: str) -> None:
    strict = Policy(admin_requires_aal3=True)
    _, row = EXPECTED[permission]
    who, resource = principal("admin", "aal2_fresh")
    decision = decide(who, permission, resource, policy=strict, now=NOW)
    if permission in RAISED_BY_ADMIN_SWITCH:
        expected = Effect.DENY if row[2] == "D" else Effect.STEP_UP
    else:
        expected = OUTCOME[row[2]]
    assert decision.effect is expected
    if expected is Effect.STEP_UP:
        assert decision.required_acr == "aal3"


@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_enrollment_token_matrix(permission: str) -> None:
    who, resource = principal("admin", "aal3_fresh")
    restricted = Principal(**{**who.__dict__, "restricted": "enrollment", "acr": "aal1"})
    resource = replace(resource, account=FRESH)
    decision = decide(restricted, permission, resource, policy=DEFAULT_POLICY, now=NOW)
    expected = Effect.ALLOW if permission in ENROLLMENT_ALLOWED else Effect.DENY
    assert decision.effect is expected


@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_no_grant_no_access(permission: str) -> None:
    nobody = Principal("user", "usr_2", "bob", ACME, "acme", (), "aal3", auth_time=NOW)
    resource = Resource(ACME, "docs", account=FRESH)
    decision = decide(nobody, permission, resource, policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is (Effect.ALLOW if permission in SELF_SERVICE else Effect.DENY)


# -- rules read from the resource's attributes ------------------------------------------

# Refusals decided before the resource's state is looked at (decide's steps 1 to 6):
# who asks, where, and with which roles. Anything later gives way to a state refusal.
EARLY_CODES = (
    "unknown_action", "unauthenticated", "step_up_unavailable", "restricted_token",
    "other_tenant", "installation_only", "not_self_service", "missing_permission",
)  # fmt: skip


def _plain_and(
    permission: str, role: str, scenario: str, **attributes: object
) -> tuple[Decision, Decision]:
    who, resource = principal(role, scenario)
    plain = decide(who, permission, resource, policy=DEFAULT_POLICY, now=NOW)
    marked = decide(
        who, permission, replace(resource, **attributes), policy=DEFAULT_POLICY, now=NOW
    )  # type: ignore[arg-type]
    return plain, marked


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("role", sorted(ROLES.values()))
@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_last_admin_rule_matrix(permission: str, role: str, scenario: str) -> None:
    """No action may leave a tenant without an active admin, whatever the assurance: a
    caller who would otherwise pass (or be asked to step up) is refused ``last_admin``."""
    plain, marked = _plain_and(permission, role, scenario, removes_last_admin=True)
    assert marked.effect is Effect.DENY
    if plain.effect is Effect.DENY and plain.code in EARLY_CODES:
        assert marked.code == plain.code  # who or where decides first
    else:
        assert marked.code == "last_admin"


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("role", sorted(ROLES.values()))
@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_grant_ceiling_matrix(permission: str, role: str, scenario: str) -> None:
    """A resource holding (or given) the admin role: only a caller who holds every one of
    its permissions tenant-wide may act on it."""
    plain, marked = _plain_and(permission, role, scenario, roles=(BUILTIN_ROLES["admin"],))
    if plain.effect is Effect.DENY and plain.code in EARLY_CODES:
        assert marked.code == plain.code
    elif role == "admin":
        assert (marked.effect, marked.code) == (plain.effect, plain.code)
    else:
        assert (marked.effect, marked.code) == (Effect.DENY, "beyond_own_roles")


# me.factors.enroll, per scenario, for an account: without a factor, with one set up by
# another session, with one set up by the caller's own (non-enrolment) session. Every
# case needs a recent proof (max_age 300: the 10-minute-old session is asked again).
ENROLL = {
    "no factor":            "SSAAADD",
    "has a factor":         "SSAAADD",
    "set up by this token": "SSAAADD",
}  # fmt: skip
ACCOUNTS = {
    "no factor": Account(has_active_factor=False),
    "has a factor": Account(has_active_factor=True),
    "set up by this token": Account(has_active_factor=True, set_up_by_this_session=True),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("state", sorted(ENROLL))
def test_adding_a_factor_matrix(state: str, scenario: str) -> None:
    who, resource = principal("viewer", scenario)
    resource = replace(resource, account=ACCOUNTS[state])
    decision = decide(who, "me.factors.enroll", resource, policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is OUTCOME[ENROLL[state][SCENARIOS.index(scenario)]]
    if decision.effect is Effect.STEP_UP:
        acr = "aal1" if state == "no factor" else "aal2"
        assert (decision.required_acr, decision.max_age) == (acr, 300)


@pytest.mark.parametrize(
    ("state", "expected"),
    [("no factor", Effect.ALLOW), ("set up by this token", Effect.ALLOW),
     ("has a factor", Effect.STEP_UP)],
)  # fmt: skip
def test_adding_a_factor_with_an_enrollment_token(state: str, expected: Effect) -> None:
    who, resource = principal("viewer", "aal2_fresh")
    restricted = replace(who, restricted="enrollment", acr="aal1")
    resource = replace(resource, account=ACCOUNTS[state])
    decision = decide(restricted, "me.factors.enroll", resource, policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is expected


# me.step_up, per scenario: with a factor able to reach the level, and without one.
STEP_UP = {
    "able":   ("AAAAADD", Account(has_active_factor=True, step_up_methods=("totp",))),
    "unable": ("DDDDDDD", Account(has_active_factor=True, step_up_methods=())),
}  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("state", sorted(STEP_UP))
def test_step_up_eligibility_matrix(state: str, scenario: str) -> None:
    row, account = STEP_UP[state]
    who, resource = principal("viewer", scenario)
    resource = replace(resource, account=account)
    decision = decide(who, "me.step_up", resource, policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is OUTCOME[row[SCENARIOS.index(scenario)]]
    if decision.effect is Effect.DENY:
        expected = "step_up_unavailable" if scenario == "service" else "no_suitable_factor"
        if scenario in ("root_cross",):
            expected = "other_tenant"
        assert decision.code == expected


@pytest.mark.parametrize("permission", sorted(EXPECTED))
@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_every_tenant_listing_matrix(permission: str, role: str) -> None:
    """Only an installation admin's listing spans tenants, and only for tenant and
    installation scoped permissions."""
    for scenario in ("aal3_fresh", "root_own"):
        who, resource = principal(role, scenario)
        listing = replace(resource, collection=None, every_tenant=True, account=FRESH)
        decision = decide(who, permission, listing, policy=DEFAULT_POLICY, now=NOW)
        spans = (
            decision.allowed
            and scenario == "root_own"
            and PERMISSIONS[permission].scope in ("tenant", "installation")
        )
        assert decision.every_tenant is spans, (permission, role, scenario)
