"""The audit page names its actors (issue 14): usernames and service accounts the admin may
see, the id kept beside the name; the actor filter takes a name or an id."""

from __future__ import annotations

import html

from tests.console.helpers import PASSWORD, Console


def test_the_audit_page_shows_usernames_and_filters_by_name(console: Console) -> None:
    user_id = console.user("sam")
    wrong = console.client.post("/auth/login", json={"username": "sam", "password": "nope"})
    assert wrong.status_code == 401
    right = console.client.post("/auth/login", json={"username": "sam", "password": PASSWORD})
    assert right.status_code == 200, right.text  # enrolment required: no factor yet
    admin, _ = console.admin()

    page = admin.get("/console/admin/audit")
    assert page.status_code == 200
    assert f'<span title="{user_id}">sam</span>' in page.text
    assert "Actor (name or id)" in page.text

    by_name = admin.get("/console/admin/audit", params={"actor": "sam"})
    by_id = admin.get("/console/admin/audit", params={"actor": user_id})
    rows = by_name.text.count("<tr class=")
    assert rows >= 1
    assert rows == by_id.text.count("<tr class=")
    assert "<td>login.failure</td>" in by_name.text
    assert "<td>login.enrollment_required</td>" in by_name.text
    assert "<td>factor.activated</td>" not in by_name.text  # the admin's, not sam's


def test_an_unknown_actor_name_matches_nothing_and_is_shown_escaped(console: Console) -> None:
    admin, _ = console.admin()
    typed = "<b>nobody</b>"
    page = admin.get("/console/admin/audit", params={"actor": typed})
    assert page.status_code == 200
    assert "No event matches." in page.text
    assert html.escape(typed, quote=True) in page.text
    assert typed not in page.text
