"""``/admin/audit``: query with filters and cursor, NDJSON export, chain verification."""

from __future__ import annotations

import json
from unittest.mock import ANY

from sqlalchemy import text

from tests.admin.helpers import events, mint, problem, runtime_of
from tests.support.app import Env


def _make_some_events(env: Env, admin_auth: dict[str, str], n: int) -> None:
    for i in range(n):
        response = env.client.post(
            "/admin/users", headers=admin_auth, json={"username": f"user{i}", "roles": ["viewer"]}
        )
        assert response.status_code == 201
        env.clock.advance(60)


def test_query_filters_and_pagination(env: Env) -> None:
    admin = mint(env)
    start = env.clock.now()
    _make_some_events(env, admin.auth, 5)
    created = events(env, admin, action="user.created", actor=admin.user_id)
    assert len(created) == 5
    assert [e["details"]["username"] for e in created] == [f"user{i}" for i in range(4, -1, -1)]

    first = env.client.get(
        "/admin/audit",
        headers=admin.auth,
        params={"action": "user.created", "limit": 2, "actor": admin.user_id},
    ).json()
    assert len(first["events"]) == 2
    assert first["next"] is not None
    second = env.client.get(
        "/admin/audit",
        headers=admin.auth,
        params={
            "action": "user.created",
            "limit": 2,
            "after": first["next"],
            "actor": admin.user_id,
        },
    ).json()
    third = env.client.get(
        "/admin/audit",
        headers=admin.auth,
        params={
            "action": "user.created",
            "limit": 2,
            "after": second["next"],
            "actor": admin.user_id,
        },
    ).json()
    assert third["next"] is None
    pages = first["events"] + second["events"] + third["events"]
    assert [e["seq"] for e in pages] == [e["seq"] for e in created]

    ascending = events(env, admin, action="user.created", actor=admin.user_id, order="asc")
    assert ascending == created[::-1]

    window = events(
        env,
        admin,
        action="user.created",
        since=(start.replace(minute=1)).isoformat(),
        until=(start.replace(minute=3)).isoformat(),
    )
    assert [e["details"]["username"] for e in window] == ["user2", "user1"]
    resource = created[0]["resource"]
    assert [e["resource"] for e in events(env, admin, resource=resource)] == [resource]
    assert events(env, admin, outcome="failure") == []


def test_query_rejects_bad_parameters(env: Env) -> None:
    admin = mint(env)
    for params in (
        {"limit": 0},
        {"limit": 5000},
        {"limit": "many"},
        {"after": -1},
        {"since": "yesterday"},
        {"until": "2026-01-01T00:00:00"},  # no time zone
        {"outcome": "maybe"},
        {"order": "sideways"},
        {"tenant": ""},
    ):
        response = env.client.get("/admin/audit", headers=admin.auth, params=params)
        problem(response, 422, "validation_error")


def test_export_streams_ndjson_and_is_audited(env: Env) -> None:
    admin = mint(env, acr="aal3")
    _make_some_events(env, admin.auth, 3)
    response = env.client.get("/admin/audit/export", headers=admin.auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert {"hash", "prev_hash", "action", "details"} <= set(lines[0])
    filtered = env.client.get(
        "/admin/audit/export",
        headers=admin.auth,
        params={"action": "user.created", "actor": admin.user_id},
    )
    assert len(filtered.text.splitlines()) == 3
    exported = events(env, admin, action="audit.exported")
    assert exported[0]["details"] == {
        "count": 3,
        "filters": {"action": "user.created", "actor": admin.user_id},
        "request_id": ANY,  # the request's X-Request-ID (docs/observability.md)
    }
    assert exported[1]["details"]["count"] == len(lines)


def test_verify_reports_ok_then_the_first_broken_link(env: Env) -> None:
    admin = mint(env)
    _make_some_events(env, admin.auth, 3)
    report = env.client.get("/admin/audit/verify", headers=admin.auth)
    assert report.status_code == 200
    body = report.json()
    assert body["ok"] is True
    assert body["events"] >= 4
    assert body["signatures_verified"] is True
    [event] = events(env, admin, action="audit.verified")
    assert event["details"]["ok"] is True

    rt = runtime_of(env)
    with rt.db.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        conn.execute(
            text("UPDATE audit_events SET outcome = 'failure' WHERE seq = 3"),
        )
    broken = env.client.get("/admin/audit/verify", headers=admin.auth).json()
    assert broken["ok"] is False
    assert broken["first_broken_seq"] == 3
    assert "modified" in broken["problem"]
    failed = events(env, admin, action="audit.verified", outcome="failure")
    assert failed[0]["details"]["first_broken_seq"] == 3
    with rt.db.begin() as conn:  # undo, so that the shutdown checkpoint can sign the chain
        conn.execute(text("UPDATE audit_events SET outcome = 'success' WHERE seq = 3"))
    assert env.client.get("/admin/audit/verify", headers=admin.auth).json()["ok"] is True


def test_audit_read_needs_admin_and_export_needs_aal3(env: Env) -> None:
    viewer = mint(env, role="viewer", acr="aal3")
    problem(env.client.get("/admin/audit", headers=viewer.auth), 403, "forbidden")
    problem(env.client.get("/admin/audit/verify", headers=viewer.auth), 403, "forbidden")
    problem(env.client.get("/admin/audit/export", headers=viewer.auth), 403, "forbidden")
    admin = mint(env, acr="aal2")
    response = env.client.get("/admin/audit/export", headers=admin.auth)
    problem(response, 401, "insufficient_user_authentication")
    assert 'acr_values="aal3"' in response.headers["www-authenticate"]
