"""The privilege matrix: every built-in role x every permission x tenant x assurance.

The expected table below is written by hand from issue 4 and DESIGN.md, not derived
from the registry. A permission added to ``PERMISSIONS`` without a row here fails
``test_every_permission_has_a_decision``: a new action needs an explicit decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.authn.principal import Grant, Principal, PrincipalKind
from bastion.authz import DEFAULT_POLICY, PERMISSIONS, Effect, Policy, Resource, decide

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
    "me.factors.enroll":       ("VDA", "AAAAADD"),
    "me.factors.remove":       ("VDA", "SSAAADD"),
    "me.sessions.manage":      ("VDA", "AAAAADD"),
}  # fmt: skip

# With "admin_requires_aal3": these need aal3, so a fresh aal2 user must step up.
RAISED_BY_ADMIN_SWITCH = {
    "collections.create", "collections.delete", "indexes.write", "points.export",
    "users.read", "users.manage", "factors.reset", "roles.read", "roles.manage",
    "service_accounts.read", "service_accounts.manage", "keys.manage", "policy.read",
    "policy.manage", "audit.read", "audit.export", "tenants.read", "tenants.manage",
}  # fmt: skip

# A user without any role may still do these (their own account).
SELF_SERVICE = {"me.read", "me.factors.enroll", "me.factors.remove", "me.sessions.manage"}

# A restricted enrollment token may do exactly these.
ENROLLMENT_ALLOWED = {"me.read", "me.factors.enroll"}


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
        assert decision.required_acr == DEFAULT_POLICY.requirement(permission).acr
        assert decision.max_age == DEFAULT_POLICY.requirement(permission).max_age


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
    decision = decide(restricted, permission, resource, policy=DEFAULT_POLICY, now=NOW)
    expected = Effect.ALLOW if permission in ENROLLMENT_ALLOWED else Effect.DENY
    assert decision.effect is expected


@pytest.mark.parametrize("permission", sorted(EXPECTED))
def test_no_grant_no_access(permission: str) -> None:
    nobody = Principal("user", "usr_2", "bob", ACME, "acme", (), "aal3", auth_time=NOW)
    decision = decide(nobody, permission, Resource(ACME, "docs"), policy=DEFAULT_POLICY, now=NOW)
    assert decision.effect is (Effect.ALLOW if permission in SELF_SERVICE else Effect.DENY)
