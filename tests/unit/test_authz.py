"""authz.decide: the order of checks, tenants, narrowed grants, service accounts, step-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.authz import (
    BUILTIN_ROLES,
    DEFAULT_POLICY,
    GRANTABLE,
    PERMISSIONS,
    Account,
    Decision,
    Effect,
    Policy,
    Resource,
    Role,
    can_grant,
    collection_matches,
    decide,
    enforce,
    granted_permissions,
    permission,
    resolve_roles,
    validate_custom_role,
)
from bastion.domain import Grant, Principal
from bastion.errors import AuthorizationError, Conflict, StepUpRequired, ValidationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACME = "tnt_acme"
GLOBEX = "tnt_globex"
DEFAULT = "tnt_default"


def user(
    *roles: str,
    tenant: str = ACME,
    tenant_name: str = "acme",
    acr: str = "aal2",
    age: float = 0,
    collections: tuple[str, ...] | None = None,
    restricted: str | None = None,
    kind: str = "user",
) -> Principal:
    return Principal(
        kind=kind,  # type: ignore[arg-type]
        id="usr_1" if kind == "user" else "sa_1",
        name="alice",
        tenant_id=tenant,
        tenant_name=tenant_name,
        grants=tuple(Grant(role, tenant, collections) for role in roles),
        acr=acr,
        auth_time=NOW - timedelta(seconds=age),
        restricted=restricted,
    )


def run(
    principal: Principal, action: str, resource: Resource | None = None, **kw: object
) -> Decision:
    return decide(
        principal,
        action,
        resource or Resource(principal.tenant_id, "docs"),
        policy=kw.pop("policy", DEFAULT_POLICY),  # type: ignore[arg-type]
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


# -- registry and roles -----------------------------------------------------------------


def test_registry_is_frozen() -> None:
    with pytest.raises(TypeError):
        PERMISSIONS["new.thing"] = PERMISSIONS["points.read"]  # type: ignore[index]


def test_unknown_permission_lookup_is_a_programming_error() -> None:
    with pytest.raises(LookupError):
        permission("points.teleport")


def test_builtin_roles_nest() -> None:
    viewer, developer, admin = (
        BUILTIN_ROLES[n].permissions for n in ("viewer", "developer", "admin")
    )
    assert viewer < developer < admin
    assert admin == GRANTABLE
    assert {"collections.read", "points.read", "points.search"} == viewer


def test_custom_role_validation() -> None:
    role = validate_custom_role("auditor", ["audit.read", "audit.export"], "reads the log")
    assert role.permissions == {"audit.read", "audit.export"}
    assert not role.builtin


@pytest.mark.parametrize(
    ("name", "perms", "message"),
    [
        ("admin", ["audit.read"], "built-in"),
        ("Bad Name", ["audit.read"], "role name"),
        ("ok", [], "at least one"),
        ("ok", ["audit.read", "points.teleport"], "points.teleport"),
        ("ok", ["me.read"], "me.read"),
        ("ok", "audit.read", "list"),
    ],
)
def test_custom_role_rejected(name: str, perms: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_custom_role(name, perms)


def test_resolve_roles_lists_unknown_names() -> None:
    custom = {"auditor": validate_custom_role("auditor", ["audit.read"])}
    assert [r.name for r in resolve_roles(["viewer", "auditor"], custom)] == ["viewer", "auditor"]
    with pytest.raises(ValidationError, match="ghost"):
        resolve_roles(["viewer", "ghost"], custom)


def test_admin_cannot_grant_beyond_own_permissions() -> None:
    auditor = validate_custom_role("auditor", ["audit.read", "users.read"])
    limited = validate_custom_role("usermgr", ["users.manage", "users.read"])
    mine = granted_permissions(user("usermgr"), custom_roles={"usermgr": limited})
    assert can_grant(mine, BUILTIN_ROLES["viewer"]) is False
    assert can_grant(mine, auditor) is False
    assert can_grant(mine, limited) is True
    admin_perms = granted_permissions(user("admin"))
    assert all(can_grant(admin_perms, role) for role in BUILTIN_ROLES.values())


def test_narrowed_grants_do_not_count_for_granting() -> None:
    assert granted_permissions(user("admin", collections=("docs",))) == frozenset()


# -- decide: order of checks ------------------------------------------------------------


def test_unknown_action_denied_fail_closed() -> None:
    decision = run(user("admin", acr="aal3"), "points.teleport")
    assert decision.effect is Effect.DENY
    assert decision.code == "unknown_action"


def test_anonymous_may_only_read_collections_of_its_tenant() -> None:
    # An anonymous principal exists only in the operator-enabled read-only anonymous mode.
    anonymous = Principal("anonymous", "", "", ACME, "acme", (), "aal1")
    assert run(anonymous, "collections.read").effect is Effect.ALLOW
    assert run(anonymous, "points.search").effect is Effect.ALLOW
    for action in (
        "points.write",
        "collections.create",
        "points.export",
        "users.read",
        "me.read",
        "audit.read",
    ):
        assert run(anonymous, action).code == "unauthenticated", action


def test_enrollment_token_may_only_enroll() -> None:
    restricted = user("admin", acr="aal1", restricted="enrollment")
    assert run(restricted, "me.read", Resource(ACME)).effect is Effect.ALLOW
    assert run(restricted, "me.factors.read", Resource(ACME)).effect is Effect.ALLOW
    fresh_account = Resource(ACME, account=Account(has_active_factor=False))
    assert run(restricted, "me.factors.enroll", fresh_account).effect is Effect.ALLOW
    for action in ("me.factors.remove", "collections.read", "users.manage", "points.search"):
        decision = run(restricted, action)
        assert decision.effect is Effect.DENY, action
        assert decision.code == "restricted_token"


def test_unknown_restriction_denies_everything() -> None:
    odd = user("admin", acr="aal3", restricted="something-else")
    assert run(odd, "me.read", Resource(ACME)).code == "restricted_token"


def test_other_tenant_denied_even_for_admin() -> None:
    decision = run(user("admin", acr="aal3"), "users.read", Resource(GLOBEX))
    assert decision.effect is Effect.DENY
    assert decision.code == "other_tenant"


def test_default_tenant_admin_administers_other_tenants() -> None:
    root = user("admin", tenant=DEFAULT, tenant_name="default", acr="aal3")
    assert run(root, "users.manage", Resource(ACME)).effect is Effect.ALLOW
    assert run(root, "tenants.manage", Resource(DEFAULT)).effect is Effect.ALLOW
    # ...but not the data plane of another tenant: tenants never see each other's collections.
    assert run(root, "points.search", Resource(ACME, "docs")).code == "other_tenant"


def test_default_tenant_developer_gets_no_cross_tenant_rights() -> None:
    dev = user("developer", tenant=DEFAULT, tenant_name="default", acr="aal3")
    assert run(dev, "users.read", Resource(ACME)).code == "missing_permission"


def test_tenant_admin_cannot_create_tenants() -> None:
    decision = run(user("admin", acr="aal3"), "tenants.manage", Resource(ACME))
    assert decision.code == "installation_only"


def test_grants_for_a_foreign_tenant_are_ignored() -> None:
    sneaky = Principal(
        "user", "usr_1", "alice", ACME, "acme", (Grant("admin", GLOBEX),), "aal3", auth_time=NOW
    )
    assert run(sneaky, "users.read", Resource(ACME)).code == "missing_permission"
    assert run(sneaky, "users.read", Resource(GLOBEX)).code == "other_tenant"


def test_missing_permission_denied_before_step_up() -> None:
    decision = run(user("viewer", acr="aal1", age=3600), "users.manage", Resource(ACME))
    assert decision.effect is Effect.DENY
    assert decision.code == "missing_permission"


def test_deleted_custom_role_grants_nothing() -> None:
    assert run(user("auditor"), "audit.read", Resource(ACME)).code == "missing_permission"
    custom = {"auditor": Role("auditor", "", frozenset({"audit.read"}))}
    assert run(user("auditor"), "audit.read", Resource(ACME), custom_roles=custom).allowed


def test_custom_role_cannot_shadow_builtin_at_decision_time() -> None:
    evil = {"viewer": Role("viewer", "", GRANTABLE)}
    assert run(
        user("viewer", acr="aal3"), "users.manage", Resource(ACME), custom_roles=evil
    ).code == ("missing_permission")


# -- narrowed grants --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [("docs", "docs", True), ("docs", "docs2", False), ("docs-*", "docs-a", True),
     ("docs-*", "docs", False), ("*", "anything", True)],
)  # fmt: skip
def test_collection_patterns(pattern: str, name: str, expected: bool) -> None:
    assert collection_matches(pattern, name) is expected


def test_narrowed_grant_applies_only_to_matching_collections() -> None:
    dev = user("developer", collections=("docs-*",))
    assert run(dev, "points.write", Resource(ACME, "docs-eu")).allowed
    assert run(dev, "collections.create", Resource(ACME, "docs-new")).allowed
    assert run(dev, "points.write", Resource(ACME, "hr")).code == "missing_permission"
    assert run(dev, "collections.create", Resource(ACME, "hr")).code == "missing_permission"


def test_narrowed_grant_listing_carries_the_filter() -> None:
    viewer = user("viewer", collections=("docs-*", "faq"))
    decision = run(viewer, "collections.read", Resource(ACME))
    assert decision.allowed
    assert decision.collections == ("docs-*", "faq")
    assert [n for n in ("docs-a", "faq", "hr", "faq2") if decision.covers(n)] == ["docs-a", "faq"]


def test_unnarrowed_grant_wins_over_narrowed_one() -> None:
    principal = Principal(
        "user", "usr_1", "alice", ACME, "acme",
        (Grant("viewer", ACME, ("faq",)), Grant("viewer", ACME)), "aal1", auth_time=NOW,
    )  # fmt: skip
    decision = run(principal, "collections.read", Resource(ACME))
    assert decision.collections is None
    assert decision.covers("anything")


def test_narrowed_admin_gets_no_tenant_wide_rights() -> None:
    admin = user("admin", acr="aal3", collections=("docs",))
    assert run(admin, "users.read", Resource(ACME)).code == "missing_permission"
    assert run(admin, "points.export", Resource(ACME, "docs")).allowed


# -- assurance --------------------------------------------------------------------------


def test_too_low_acr_asks_for_step_up_with_requirement() -> None:
    decision = run(user("developer", acr="aal1"), "points.write")
    assert decision.effect is Effect.STEP_UP
    assert decision.code == "insufficient_acr"
    assert (decision.required_acr, decision.max_age) == ("aal2", None)


def test_stale_auth_time_asks_for_step_up() -> None:
    decision = run(user("developer", acr="aal3", age=901), "collections.delete")
    assert decision.effect is Effect.STEP_UP
    assert decision.code == "authentication_too_old"
    assert (decision.required_acr, decision.max_age) == ("aal2", 900)
    assert run(user("developer", acr="aal2", age=899), "collections.delete").allowed


def test_missing_auth_time_counts_as_stale() -> None:
    principal = Principal("user", "usr_1", "a", ACME, "acme", (Grant("admin", ACME),), "aal3")
    assert run(principal, "users.manage", Resource(ACME)).effect is Effect.STEP_UP
    assert run(principal, "users.read", Resource(ACME)).allowed


def test_unknown_acr_never_satisfies() -> None:
    assert run(user("viewer", acr="aal9"), "points.read").effect is Effect.STEP_UP


def test_admin_requires_aal3_switch() -> None:
    strict = Policy(admin_requires_aal3=True)
    decision = run(user("admin", acr="aal2"), "users.read", Resource(ACME), policy=strict)
    assert (decision.effect, decision.required_acr) == (Effect.STEP_UP, "aal3")
    assert run(user("developer", acr="aal2"), "collections.create", policy=strict).required_acr == (
        "aal3"
    )
    assert run(user("developer", acr="aal2"), "points.write", policy=strict).allowed


def test_service_account_cannot_step_up() -> None:
    sa = user("admin", acr="aal1", kind="service_account")
    decision = run(sa, "collections.create")
    assert decision.effect is Effect.DENY
    assert decision.code == "service_account_assurance"
    assert decision.reason.startswith("Service accounts cannot perform collections.create")
    assert run(sa, "users.read", Resource(ACME)).effect is Effect.DENY


def test_service_account_reads_and_writes_within_roles() -> None:
    sa = user("developer", acr="aal1", kind="service_account", age=10**6)
    assert run(sa, "points.search").allowed
    assert run(sa, "points.write").allowed
    viewer_sa = user("viewer", acr="aal1", kind="service_account")
    assert run(viewer_sa, "points.write").code == "missing_permission"


def test_service_account_writes_can_be_switched_off() -> None:
    policy = Policy.from_document({"service_account_actions": ["points.read", "points.search"]})
    sa = user("developer", acr="aal1", kind="service_account")
    assert run(sa, "points.write", policy=policy).code == "service_account_assurance"
    assert run(sa, "points.search", policy=policy).allowed


def test_self_service_needs_no_role() -> None:
    nobody = user(acr="aal1")
    assert run(nobody, "me.read", Resource(ACME)).allowed
    assert run(nobody, "me.sessions.manage", Resource(ACME)).allowed
    remove = run(nobody, "me.factors.remove", Resource(ACME))
    assert (remove.effect, remove.required_acr, remove.max_age) == (Effect.STEP_UP, "aal2", 300)
    assert run(nobody, "me.read", Resource(GLOBEX)).code == "other_tenant"


def test_service_account_self_service_is_read_only() -> None:
    sa = user("admin", kind="service_account", acr="aal1")
    assert run(sa, "me.read", Resource(ACME)).allowed
    assert run(sa, "me.factors.enroll", Resource(ACME)).code == "not_self_service"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        decide(user("viewer"), "points.read", Resource(ACME), policy=DEFAULT_POLICY,
               now=datetime(2026, 1, 1))  # fmt: skip


# -- enforce ----------------------------------------------------------------------------


def test_enforce_raises_typed_errors() -> None:
    with pytest.raises(StepUpRequired) as step_up:
        enforce(run(user("admin", acr="aal2", age=600), "users.manage", Resource(ACME)))
    assert (step_up.value.acr, step_up.value.max_age, step_up.value.status) == ("aal2", 300, 401)
    assert 'acr_values="aal2"' in step_up.value.www_authenticate()
    assert "max_age=300" in step_up.value.www_authenticate()
    with pytest.raises(AuthorizationError) as denied:
        enforce(run(user("viewer"), "points.write"))
    assert (denied.value.status, denied.value.code) == (403, "forbidden")
    assert denied.value.fields["reason"] == "missing_permission"


def test_enforce_answers_registered_denials_with_their_own_code() -> None:
    admin = user("admin", acr="aal3")
    with pytest.raises(Conflict) as conflict:
        enforce(run(admin, "users.manage", Resource(ACME, removes_last_admin=True)))
    assert (conflict.value.status, conflict.value.code) == (409, "last_admin")
    with pytest.raises(AuthorizationError) as refused:
        enforce(run(user("viewer", kind="service_account", acr="aal1"), "me.step_up"))
    assert refused.value.code == "step_up_unavailable"


# -- rules read from the resource's attributes ---------------------------------------------


def test_no_role_beyond_ones_own_is_granted_or_managed() -> None:
    manager_role = Role("user-manager", "", frozenset({"users.read", "users.manage"}))
    manager = user("user-manager", acr="aal3")
    custom = {"user-manager": manager_role}
    viewer, admin = BUILTIN_ROLES["viewer"], BUILTIN_ROLES["admin"]
    beyond = run(manager, "users.manage", Resource(ACME, roles=(viewer, admin, admin)),
                 custom_roles=custom)  # fmt: skip
    assert (beyond.effect, beyond.code) == (Effect.DENY, "beyond_own_roles")
    assert beyond.reason.endswith("beyond your own: admin, viewer.")
    within = run(manager, "users.manage", Resource(ACME, roles=(manager_role,)),
                 custom_roles=custom)  # fmt: skip
    assert within.allowed
    # A grant narrowed to collections never counts toward the ceiling.
    narrowed = user("admin", acr="aal3", collections=("docs",))
    assert run(narrowed, "users.manage", Resource(ACME, roles=(viewer,))).code in (
        "missing_permission",
        "beyond_own_roles",
    )


def test_the_last_admin_rule_is_decided_before_assurance() -> None:
    stale = user("admin", acr="aal1", age=3600)
    decision = run(stale, "users.manage", Resource(ACME, removes_last_admin=True))
    assert (decision.effect, decision.code) == (Effect.DENY, "last_admin")
    assert run(user("admin", acr="aal3"), "users.manage", Resource(ACME)).allowed


def test_every_tenant_listing_is_the_installation_admins_only() -> None:
    root = user("admin", tenant=DEFAULT, tenant_name="default", acr="aal3")
    listing = run(root, "users.read", Resource(DEFAULT, every_tenant=True))
    assert listing.allowed
    assert listing.every_tenant
    tenant_admin = run(user("admin", acr="aal3"), "users.read", Resource(ACME, every_tenant=True))
    assert tenant_admin.allowed
    assert not tenant_admin.every_tenant
    data = run(root, "collections.read", Resource(DEFAULT, None, every_tenant=True))
    assert data.allowed
    assert not data.every_tenant  # collections never span tenants


@pytest.mark.parametrize(
    ("acr", "restricted", "account", "expected"),
    [
        ("aal1", None, Account(has_active_factor=False), Effect.ALLOW),
        ("aal1", None, Account(has_active_factor=True), Effect.STEP_UP),
        ("aal1", None, Account(True, set_up_by_this_session=True), Effect.STEP_UP),
        ("aal2", None, Account(has_active_factor=True), Effect.ALLOW),
        ("aal1", "enrollment", Account(has_active_factor=False), Effect.ALLOW),
        ("aal1", "enrollment", Account(has_active_factor=True, set_up_by_this_session=True),
         Effect.ALLOW),
        ("aal1", "enrollment", Account(has_active_factor=True), Effect.STEP_UP),
        ("aal1", None, None, Effect.STEP_UP),  # not read: fails closed
        ("aal1", "enrollment", None, Effect.STEP_UP),
    ],
)  # fmt: skip
def test_adding_a_factor_to_an_account_that_has_one_needs_aal2(
    acr: str, restricted: str | None, account: Account | None, expected: Effect
) -> None:
    caller = user("viewer", acr=acr, restricted=restricted)
    decision = run(caller, "me.factors.enroll", Resource(ACME, account=account))
    assert decision.effect is expected, decision.reason
    if expected is Effect.STEP_UP:
        assert (decision.required_acr, decision.max_age) == ("aal2", 300)


@pytest.mark.parametrize(
    ("caller", "account", "code"),
    [
        (user("viewer", acr="aal1"), Account(True, step_up_methods=("totp",)), "allowed"),
        (user("viewer", acr="aal1"), Account(True, step_up_methods=()), "no_suitable_factor"),
        (user("viewer", acr="aal1"), None, "no_suitable_factor"),
        (user("viewer", restricted="enrollment"), Account(True, step_up_methods=("totp",)),
         "step_up_unavailable"),
        (user("viewer", kind="service_account", acr="aal1"), Account(False), "step_up_unavailable"),
    ],
)  # fmt: skip
def test_step_up_eligibility(caller: Principal, account: Account | None, code: str) -> None:
    assert run(caller, "me.step_up", Resource(ACME, account=account)).code == code


def test_a_policy_cannot_make_step_up_need_what_it_grants() -> None:
    with pytest.raises(ValidationError, match="step-up"):
        Policy.from_document({"actions": {"me.step_up": {"acr": "aal2", "max_age": None}}})
    with pytest.raises(ValidationError, match="step-up"):
        Policy.from_document({"actions": {"me.step_up": {"acr": "aal1", "max_age": 60}}})
